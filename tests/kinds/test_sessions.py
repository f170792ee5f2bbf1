"""Sessions: payload -> row (the embedded user is not kept); a user's deletion ends and erases
their sessions (PostgreSQL and SQLite)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from service.clerk.rows import RowOptions
from service.inbox.store import Status
from service.kinds.sessions import build
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import deliver, one

S = "sess_2g7np7Hrk0SN6kj5EDMLDaKNL0S"
U = "user_29w83sxmDNGwOuEthce5gg56FcC"


def test_build_fills_the_row_without_the_embedded_user() -> None:
    row = build(cp.session(), RowOptions()).row
    assert (row["user_id"], row["client_id"], row["status"]) == (
        U,
        "client_2g7np7Hrk0SN6kj5EDMLDaKNL0S",
        "active",
    )
    assert row["expire_at"] is not None and row["last_active_organization_id"] is None
    assert "user" not in row["raw"] and row["raw"]["latest_activity"]["city"] == "Lisbon"
    assert set(row) == {c.name for c in t.sessions.columns}


async def test_status_events_move_the_session_forward(engine: AsyncEngine) -> None:
    await deliver(engine, cp.envelope("session.created", cp.session()))
    ended = cp.session(status="ended", updated_at=cp.T0 + 60_000)
    assert await deliver(engine, cp.envelope("session.ended", ended)) is Status.APPLIED
    assert (await one(engine, t.sessions, S))["status"] == "ended"


async def test_a_deleted_users_sessions_end_and_forget_where_they_were(
    engine: AsyncEngine,
) -> None:
    await deliver(engine, cp.envelope("user.created", cp.user()))
    await deliver(engine, cp.envelope("session.created", cp.session()))
    await deliver(engine, cp.envelope("user.deleted", cp.deleted("user", U), cp.T0 + 100))
    session = await one(engine, t.sessions, S)
    assert session["deleted_at"] is not None and session["raw"] is None
    late = cp.session("sess_late", updated_at=cp.T0 + 50)
    await deliver(engine, cp.envelope("session.created", late))
    stored = await one(engine, t.sessions, "sess_late")
    assert stored["deleted_at"] is not None and stored["raw"] is None
