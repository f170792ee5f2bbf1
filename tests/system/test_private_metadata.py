"""STORE_PRIVATE_METADATA=false means nowhere: no `private_metadata`, at any depth, in any
table, the inbox included (the signature is checked on the raw bytes, the redacted body is what
is stored). A full dump of the database is searched for the marker."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_batch
from service.clerk.rows import RowOptions
from service.config import Settings
from service.db.types import metadata
from service.queue.client import Enqueuer, connect
from service.queue.worker import apply_pending, job_context
from service.reconcile.clerk_api import ClerkAPI
from service.reconcile.modes import ReconcileOptions
from service.reconcile.run import reconcile
from tests.support import clerk_payloads as cp
from tests.support.clerk_instances import populate
from tests.support.fake_clerk import KEY, FakeClerk
from tests.support.replica_helpers import store_event
from tests.support.settings import make_settings
from tests.support.signing import signed

MARKER = "marker-in-private-metadata-3c9f"


def with_private(data: dict[str, Any]) -> dict[str, Any]:
    """The object with private metadata on itself and on every object nested in it."""

    def mark(value: Any) -> Any:
        if isinstance(value, dict):
            marked = {k: mark(v) for k, v in value.items()}
            if "id" in marked and "object" in marked:
                marked["private_metadata"] = {"note": MARKER, "n": 12345678901234567890123}
            return marked
        if isinstance(value, list):
            return [mark(v) for v in value]
        return value

    marked = mark(data)
    assert isinstance(marked, dict)
    return marked


async def dump(engine: AsyncEngine, without: tuple[str, ...] = ()) -> str:
    """Every row of every table (but those named `without`), as text."""
    parts: list[str] = []
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name in without:
                continue
            parts.extend(repr(tuple(row)) for row in await conn.execute(select(table)))
    return "\n".join(parts)


async def deliver_all(client: Any, engine: AsyncEngine, options: RowOptions) -> None:
    events = [
        cp.envelope("user.created", with_private(cp.user())),
        cp.envelope("organization.created", with_private(cp.organization())),
        cp.envelope("organizationMembership.created", with_private(cp.membership())),
        cp.envelope("organizationInvitation.created", with_private(cp.invitation())),
    ]
    for event in events:
        body, headers = signed(event)
        assert MARKER.encode() in body
        response = await client.post("/webhooks/clerk", content=body, headers=headers)
        assert response.status_code == 200, response.text
    result = await apply_batch(engine, options, 100)
    assert dict(result.outcomes) == {"applied": len(events)}


async def test_off_means_nowhere(
    client_for: Any, db_url: str, redis_url: str, engine: AsyncEngine
) -> None:
    settings = make_settings(db_url, redis_url, store_private_metadata=False)
    client = await client_for(settings)
    await deliver_all(client, engine, RowOptions(store_private_metadata=False))
    everything = await dump(engine)
    assert "jane.doe@acme.example" in everything  # the dump does see the replica's contents
    assert MARKER not in everything
    assert "private_metadata': {" not in everything and '"private_metadata"' not in everything


async def test_on_keeps_it_where_clerk_sent_it(
    client_for: Any, settings: Settings, engine: AsyncEngine
) -> None:
    client = await client_for(settings)
    await deliver_all(client, engine, RowOptions())
    assert MARKER in await dump(engine)


@pytest.fixture
def fake() -> FakeClerk:
    """A Clerk instance whose every object (and every object nested in one) holds private
    metadata, as the Backend API lists it."""
    fake = FakeClerk()
    populate(fake, users=6, orgs=2, members_per_org=2)
    for name in ("users", "organizations", "memberships", "invitations"):
        setattr(fake, name, [with_private(o) for o in getattr(fake, name)])
    return fake


async def test_off_means_nowhere_after_a_reconcile(
    db_url: str, redis_url: str, clerk_url: str, engine: AsyncEngine, fake: FakeClerk
) -> None:
    settings = make_settings(
        db_url,
        redis_url,
        store_private_metadata=False,
        clerk_secret_key=KEY,
        clerk_api_url=clerk_url,
    )
    api = ClerkAPI(settings, backoff_max_seconds=0.05)
    try:
        report = await reconcile(engine, api, settings, ReconcileOptions())
    finally:
        await api.close()
    assert report.ok, report.summary()
    everything = await dump(engine)
    assert fake.users[0]["id"] in everything and fake.invitations[0]["id"] in everything
    assert MARKER not in everything


async def test_off_means_nowhere_the_worker_writes(
    db_url: str, redis_url: str, engine: AsyncEngine
) -> None:
    """Events stored while private metadata was kept (the inbox holds it as sent), applied
    by the worker's job once STORE_PRIVATE_METADATA=false: the replica tables get none."""
    for event in (
        cp.envelope("user.created", with_private(cp.user())),
        cp.envelope("organization.created", with_private(cp.organization())),
        cp.envelope("organizationMembership.created", with_private(cp.membership())),
        cp.envelope("organizationInvitation.created", with_private(cp.invitation())),
    ):
        await store_event(engine, event)
    settings = make_settings(db_url, redis_url, store_private_metadata=False)
    enqueuer = Enqueuer(connect(settings), settings)
    try:
        done = await apply_pending(job_context(settings, engine, enqueuer), time.time())
    finally:
        await enqueuer.close()
    assert done
    replica = await dump(engine, without=("clerk_replica_inbox",))
    assert "jane.doe@acme.example" in replica
    assert MARKER not in replica
