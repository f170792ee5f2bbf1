"""No input depth gives a 5xx, and no NUL fails an event: ingest refuses a body nested deeper
than bounds.MAX_DEPTH (4xx, stored nothing), redacts any body it accepts (STORE_PRIVATE_METADATA
=false); apply fails a deeper body stored before (an old inbox) with a clear error and goes on;
a NUL in any string or key is stored without it, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from service import jsoncodec
from service.apply.batch import apply_batch, apply_one
from service.clerk import bounds
from service.clerk.rows import RowOptions
from service.inbox import store
from service.inbox.store import Status
from service.ingest.endpoint import delivery_for
from service.ingest.envelope import Envelope
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import deliver, inbox_count, inbox_row, one, store_event
from tests.support.settings import make_settings
from tests.support.signing import new_svix_id, signed_headers

OFF = RowOptions(store_private_metadata=False)


def nested(levels: int) -> str:
    """JSON text of objects `levels + 1` deep, private metadata innermost (written out:
    encoders have their own limits)."""
    return '{"a":' * (levels - 1) + '{"private_metadata":{"x":1}}' + "}" * (levels - 1)


def deep_user_body(levels: int, **user: Any) -> bytes:
    """A user.created body nested `levels` deep in all (metadata inside user inside body)."""
    envelope = cp.envelope("user.created", cp.user(public_metadata="__deep__", **user))
    return json.dumps(envelope).replace('"__deep__"', nested(levels - 3)).encode()


@pytest.mark.parametrize("levels", [bounds.MAX_DEPTH, bounds.MAX_DEPTH + 1, 600, 900, 1023])
async def test_no_depth_the_ingest_reads_gives_a_5xx(
    client_for: Any, db_url: str, redis_url: str, engine: AsyncEngine, levels: int
) -> None:
    client = await client_for(make_settings(db_url, redis_url, store_private_metadata=False))
    body = deep_user_body(levels)
    assert bounds.depth(jsoncodec.loads(body)) == levels
    response = await client.post("/webhooks/clerk", content=body, headers=signed_headers(body))
    if levels <= bounds.MAX_DEPTH:
        assert response.status_code == 200, response.text
        result = await apply_batch(engine, OFF, 10)
        assert dict(result.outcomes) == {"applied": 1}
        stored = (await one(engine, t.users, cp.user()["id"]))["raw"]
        assert "private_metadata" not in json.dumps(stored)
    else:
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "malformed_json"
        assert await inbox_count(engine) == 0


@pytest.mark.parametrize("store_private", [False, True])
async def test_a_too_deep_body_stored_before_fails_alone(
    engine: AsyncEngine, store_private: bool
) -> None:
    # Stored by a version that accepted any depth the JSON parser could read.
    body = deep_user_body(900, id="user_deep")
    deep_id = new_svix_id()
    envelope = Envelope("user.created", {"id": "user_deep"}, cp.T0, "user_deep")
    async with engine.begin() as conn:
        await store.record(conn, delivery_for(deep_id, body, envelope), datetime.now(UTC))
    options = RowOptions(store_private_metadata=store_private)
    assert await deliver(engine, cp.envelope("user.created", cp.user())) == Status.APPLIED
    result = await apply_batch(engine, options, 10)
    assert dict(result.outcomes) == {"failed": 1}
    failed = await inbox_row(engine, deep_id)
    assert failed["status"] == Status.FAILED
    assert f"more than {bounds.MAX_DEPTH} levels" in failed["last_error"]


async def test_a_nul_anywhere_is_stored_without_it(engine: AsyncEngine) -> None:
    user = cp.user(
        first_name="Ja\u0000ne",
        public_metadata={"k\u0000ey": ["v\u0000", {"deep\u0000": "x\u0000y"}]},
        unsafe_metadata={"note": "\u0000"},
    )
    assert await deliver(engine, cp.envelope("user.created", user)) == Status.APPLIED
    later = cp.user(updated_at=cp.T0 + 1, first_name="Jan\u0000e2")
    assert await deliver(engine, cp.envelope("user.updated", later)) == Status.APPLIED
    row = await one(engine, t.users, user["id"])
    assert row["first_name"] == "Jane2"
    assert "\u0000" not in json.dumps(row["raw"]) and "\\u0000" not in json.dumps(row["raw"])


async def test_a_nul_is_dropped_with_private_metadata_off(engine: AsyncEngine) -> None:
    user = cp.user(last_name="Do\u0000e", public_metadata={"\u0000": 1})
    svix_id = await store_event(engine, cp.envelope("user.created", user))
    assert await apply_one(engine, svix_id, OFF) == Status.APPLIED
    row = await one(engine, t.users, user["id"])
    assert row["last_name"] == "Doe" and row["public_metadata"] == {"": 1}
