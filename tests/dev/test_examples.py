"""`send-test-event`'s examples are Clerk's own (the webhooks spec's example events), one for every
type the spec has an example of, and every replicated one applies as it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from service.clerk.rows import RowOptions
from service.dev.examples import event_types, example_event
from service.inbox.store import Status
from service.kinds.registry import ROUTES
from tests.support import clerk_spec
from tests.support.replica_helpers import deliver

ROOT = Path(__file__).resolve().parents[2]


def test_the_examples_are_the_specs_own() -> None:
    # scripts/clerk-examples writes them; regenerating would change nothing.
    shipped = json.loads((ROOT / "service/dev/clerk_examples.json").read_text())
    assert shipped == clerk_spec.example_events()


def test_every_replicated_type_has_an_example() -> None:
    assert set(ROUTES) <= set(event_types())


def test_an_example_is_made_current_to_send() -> None:
    event = example_event("user.updated")
    assert event["timestamp"] == event["data"]["updated_at"] > 1_716_883_200_000
    with pytest.raises(KeyError):
        example_event("user.exploded")


@pytest.mark.parametrize("event_type", sorted(ROUTES))
async def test_clerks_own_example_applies(engine: AsyncEngine, event_type: str) -> None:
    assert await deliver(engine, example_event(event_type), RowOptions()) is Status.APPLIED
