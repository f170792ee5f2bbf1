"""Roles: payload -> row and grants; the grants are exactly those of the newest applied role
snapshot, and go with the role (PostgreSQL and SQLite)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from service.clerk.rows import RowOptions
from service.inbox.store import Status
from service.kinds.roles import build
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import deliver, one, rows

R = "role_2g7np7Hrk0SN6kj5EDMLDaKNL0S"


def test_build_fills_the_row_and_one_grant_per_permission() -> None:
    data = cp.role(permissions=[cp.permission("perm_a", key="org:a"), cp.permission("perm_b")])
    snap = build(data, RowOptions())
    assert (snap.row["key"], snap.row["name"], snap.row["is_creator_eligible"]) == (
        "org:content_manager",
        "Content Manager",
        False,
    )
    assert set(snap.row) == {c.name for c in t.roles.columns}
    grants = snap.children[t.role_permissions]
    assert [(g["id"], g["permission_id"], g["permission_key"]) for g in grants] == [
        (f"{R}/perm_a", "perm_a", "org:a"),
        (f"{R}/perm_b", "perm_b", "org:posts:create"),
    ]


def test_absent_optional_fields_are_null() -> None:
    snap = build({"id": R, "created_at": 1, "updated_at": 2}, RowOptions())
    nulls = {k for k, v in snap.row.items() if v is None}
    assert nulls == {
        "key",
        "name",
        "description",
        "is_creator_eligible",
        "deleted_at",
        "instance_id",
    }
    assert snap.children[t.role_permissions] == []


async def test_grants_follow_the_newest_role_and_go_with_it(engine: AsyncEngine) -> None:
    two = cp.role(permissions=[cp.permission("perm_a"), cp.permission("perm_b")])
    one_left = cp.role(permissions=[cp.permission("perm_b")], updated_at=cp.T0 + 10)
    await deliver(engine, cp.envelope("role.created", two))
    await deliver(engine, cp.envelope("role.updated", one_left))
    assert await deliver(engine, cp.envelope("role.updated", two)) is Status.APPLIED  # older
    assert [g["permission_id"] for g in await rows(engine, t.role_permissions)] == ["perm_b"]
    await deliver(engine, cp.envelope("role.deleted", cp.deleted("role", R), cp.T0 + 20))
    assert (await one(engine, t.roles, R))["deleted_at"] is not None
    assert await rows(engine, t.role_permissions) == []
