"""Owned child rows: exactly the given set for the owners named, other owners left alone."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from service.replica.children import drop_children, replace_children
from tests.support import tables as t
from tests.support.replica_helpers import rows


def email(id: str, user_id: str, address: str) -> dict[str, Any]:
    return {
        "id": id,
        "user_id": user_id,
        "email_address": address,
        "verification_status": "verified",
        "verification_strategy": "email_code",
        "is_primary": False,
        "created_at": None,
        "updated_at": None,
        "raw": {"id": id},
    }


async def seed(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(t.email_addresses),
            [
                email("idn_a", "u_1", "a@x.example"),
                email("idn_b", "u_1", "b@x.example"),
                email("idn_c", "u_2", "c@x.example"),
                email("idn_d", "u_3", "d@x.example"),
            ],
        )


async def by_owner(engine: AsyncEngine) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for r in await rows(engine, t.email_addresses):
        found.setdefault(r["user_id"], []).append((r["id"], r["email_address"]))
    return found


async def test_replace_children_makes_exactly_the_given_set(engine: AsyncEngine) -> None:
    await seed(engine)
    given = [
        email("idn_e", "u_1", "e@x.example"),
        email("idn_b", "u_1", "first@x.example"),
        email("idn_b", "u_1", "b2@x.example"),  # one id twice: the last one given
    ]
    async with engine.begin() as conn:
        await replace_children(conn, t.email_addresses, "user_id", ["u_1", "u_2"], given)
    assert await by_owner(engine) == {
        "u_1": [("idn_b", "b2@x.example"), ("idn_e", "e@x.example")],
        "u_3": [("idn_d", "d@x.example")],
    }


async def test_replace_children_with_nothing_empties_the_owners(engine: AsyncEngine) -> None:
    await seed(engine)
    async with engine.begin() as conn:
        await replace_children(conn, t.email_addresses, "user_id", ["u_1"], [])
    assert set(await by_owner(engine)) == {"u_2", "u_3"}


async def test_replace_children_of_many_owners_across_chunks(engine: AsyncEngine) -> None:
    owners = [f"u_{n:04}" for n in range(1200)]
    given = [email(f"idn_{o}", o, f"{o}@x.example") for o in owners]
    async with engine.begin() as conn:
        await replace_children(conn, t.email_addresses, "user_id", owners, given)
    assert len(await rows(engine, t.email_addresses)) == 1200


async def test_drop_children_drops_only_those_owners(engine: AsyncEngine) -> None:
    await seed(engine)
    async with engine.begin() as conn:
        await drop_children(conn, t.email_addresses, "user_id", ["u_1", "u_3", "u_none"])
    assert await by_owner(engine) == {"u_2": [("idn_c", "c@x.example")]}
