"""Permissions: payload -> row; deleted by id (PostgreSQL and SQLite)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from service.clerk.rows import RowOptions
from service.kinds.permissions import build
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import deliver, one

P = "perm_2g7np7Hrk0SN6kj5EDMLDaKNL0S"


def test_build_fills_the_row() -> None:
    row = build(cp.permission(), RowOptions()).row
    assert (row["key"], row["type"], row["name"]) == ("org:posts:create", "custom", "Create Posts")
    assert set(row) == {c.name for c in t.permissions.columns}


async def test_a_permission_is_stored_then_tombstoned(engine: AsyncEngine) -> None:
    await deliver(engine, cp.envelope("permission.created", cp.permission()))
    await deliver(engine, cp.envelope("permission.deleted", cp.deleted("permission", P)))
    stored = await one(engine, t.permissions, P)
    assert stored["deleted_at"] is not None and stored["key"] == "org:posts:create"
