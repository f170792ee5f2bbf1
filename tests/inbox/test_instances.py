"""Instance bindings: which id an endpoint's events take, when an envelope is refused, and how
a key's finding displaces a first delivery's but never another key's (PostgreSQL and SQLite)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.inbox.instances import (
    Bindings,
    InstanceConflict,
    bind_by_key,
    bind_deliveries,
    bindings,
    instances,
)


def test_an_endpoint_s_events_take_its_instance() -> None:
    known = Bindings({"prod": "ins_p"}, {"ins_p": "prod"})
    assert known.refusal("prod", "ins_p") is None and known.instance_for("prod", "ins_p") == "ins_p"
    assert known.refusal("prod", None) is None and known.instance_for("prod", None) == "ins_p"
    refused = known.refusal("prod", "ins_s")
    assert refused is not None and "ins_s" in refused and "'prod'" in refused
    # An unbound name may take an id nobody holds, not prod's.
    assert known.refusal("staging", "ins_s") is None
    assert known.instance_for("staging", "ins_s") == "ins_s"
    taken = known.refusal("staging", "ins_p")
    assert taken is not None and "belongs to endpoint 'prod'" in taken
    learned = known.learn("staging", "ins_s")
    assert learned.refusal("staging", "ins_other") is not None


async def test_configured_ids_win_over_stored_ones(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await bind_deliveries(conn, {"prod": "ins_forged", "staging": "ins_s"})
        # A second first delivery binds nothing more: the name, and the id, are taken.
        await bind_deliveries(conn, {"prod": "ins_other", "qa": "ins_s"})
    async with engine.connect() as conn:
        stored = await bindings(conn, {})
        configured = await bindings(conn, {"prod": "ins_p", "qa": "ins_s"})
    assert stored.by_name == {"prod": "ins_forged", "staging": "ins_s"}
    # staging's stored binding names an id configured for qa: it does not count.
    assert configured.by_name == {"prod": "ins_p", "qa": "ins_s"}
    assert configured.by_id == {"ins_p": "prod", "ins_s": "qa"}


async def test_a_key_displaces_a_delivery_binding_never_another_key_s(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await bind_deliveries(conn, {"staging": "ins_p"})
        assert await bind_by_key(conn, "prod", "ins_p", "production", {}) is None
    async with engine.begin() as conn:
        with pytest.raises(InstanceConflict, match="already bound to 'prod'"):
            await bind_by_key(conn, "staging", "ins_p", None, {})
    async with engine.begin() as conn:
        with pytest.raises(InstanceConflict, match="INSTANCE_ID setting says ins_q"):
            await bind_by_key(conn, "prod", "ins_p", None, {"prod": "ins_q"})
        with pytest.raises(InstanceConflict, match="configured for 'qa'"):
            await bind_by_key(conn, "prod", "ins_p", None, {"qa": "ins_p"})
    async with engine.begin() as conn:
        # The key now lists another instance: the latest finding wins, and says what it was.
        assert await bind_by_key(conn, "prod", "ins_p2", None, {}) == "ins_p"
    async with engine.connect() as conn:
        found = {r.name: (r.instance_id, r.bound_by) for r in await conn.execute(select(instances))}
    assert found == {"prod": ("ins_p2", "reconcile")}
