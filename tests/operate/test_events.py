"""Events as the console shows them: failures newest first, metadata, the body on request,
errors with their values masked."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.inbox.store import inbox
from service.operate import events
from tests.support import clerk_payloads as cp
from tests.support.console import LEAKY_ERROR, failed_event
from tests.support.replica_helpers import store_event


def test_safe_error_keeps_the_kind_of_error_and_masks_values() -> None:
    masked = events.safe_error(LEAKY_ERROR)
    assert masked == "IntegrityError: duplicate key value (email)=(…) for '…'"
    assert events.safe_error('KeyError: "jane@example.com"') == "KeyError: '…'"
    assert events.safe_error("bad address jane.doe+x@example.co.uk here") == (
        "bad address …@… here"
    )
    assert events.safe_error("first line\nDETAIL: Key (id)=(x) secret") == "first line"
    assert events.safe_error(None) is None and events.safe_error("") == ""
    long = events.safe_error("x" * 1000, limit=50)
    assert long is not None and len(long) == 50 and long.endswith("…")


async def test_failed_events_newest_first_bounded_and_masked(engine: AsyncEngine) -> None:
    first, _ = await failed_event(engine)
    second, user_id = await failed_event(engine, error="PayloadError: no id")
    await store_event(engine, cp.envelope("user.created", cp.user()))  # pending: not listed
    found = await _read(engine, lambda conn: events.failed_events(conn, 10))
    assert [f["svix_id"] for f in found] == [second, first]
    assert found[0]["object_id"] == user_id and found[0]["instance"] == "default"
    assert found[1]["last_error"] == events.safe_error(LEAKY_ERROR)
    assert "body" not in found[0]
    assert len(await _read(engine, lambda conn: events.failed_events(conn, 1))) == 1


async def test_an_event_and_its_body_which_may_be_forgotten(engine: AsyncEngine) -> None:
    svix_id, _ = await failed_event(engine)
    found = await _read(engine, lambda conn: events.event(conn, svix_id))
    assert found is not None and found["has_body"] and found["event_type"] == "user.created"
    assert "body" not in found
    body = await _read(engine, lambda conn: events.event_body(conn, svix_id))
    assert body is not None and '"user.created"' in body
    async with engine.begin() as conn:
        await conn.execute(update(inbox).where(inbox.c.svix_id == svix_id).values(body=None))
    found = await _read(engine, lambda conn: events.event(conn, svix_id))
    assert found is not None and not found["has_body"]
    assert await _read(engine, lambda conn: events.event_body(conn, svix_id)) is None
    assert await _read(engine, lambda conn: events.event(conn, "msg_nope")) is None


async def _read(engine: AsyncEngine, work):  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return await work(conn)
