"""The registry: every kind discovered once, parents first, every event type routed once, and
the declarations consistent with their tables."""

from __future__ import annotations

import importlib
import pkgutil
import string
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

import service.kinds
from service.db.types import metadata
from service.inbox.store import inbox
from service.kinds import registry, writes
from service.kinds.declaration import Kind
from service.kinds.registry import KINDS, ROUTES, Action
from service.reconcile.checkpoints import runs
from service.reconcile.lock import locks
from tests.support import tables as t
from tests.support.replica_helpers import rows

AT = datetime(2024, 6, 1, tzinfo=UTC)


def test_every_declared_kind_is_discovered_once() -> None:
    declared = []
    for module in pkgutil.iter_modules(service.kinds.__path__):
        found = getattr(importlib.import_module(f"service.kinds.{module.name}"), "KIND", None)
        if isinstance(found, Kind):
            declared.append(found)
    assert sorted(k.name for k in KINDS) == sorted(k.name for k in declared)
    assert len({id(k) for k in KINDS}) == len(KINDS) == 13
    assert {k.name: k for k in KINDS} == registry.BY_NAME
    assert registry.kind("users").table is t.users


def test_parents_come_first_then_by_order() -> None:
    names = [k.name for k in KINDS]
    assert names == [
        "organizations",
        "users",
        "permissions",
        "roles",
        "waitlist_entries",
        "billing_plans",
        "billing_subscription_items",
        "billing_subscriptions",
        "billing_payment_attempts",
        "memberships",
        "invitations",
        "domains",
        "sessions",
    ]
    for k in KINDS:
        for parent in k.parents:
            assert names.index(parent.kind) < names.index(k.name)


def test_routes_cover_every_kinds_event_types_exactly_once() -> None:
    expected: dict[str, tuple[Kind, Action]] = {}
    for k in KINDS:
        expected.update({e: (k, Action.UPSERT) for e in k.upserts})
        expected.update({e: (k, Action.END) for e in k.deletes})
    assert sum(len(k.upserts) + len(k.deletes) for k in KINDS) == len(expected)
    assert expected == ROUTES
    assert ROUTES["organizationMembership.deleted"] == (registry.kind("memberships"), Action.END)


def test_is_replicated() -> None:
    assert all(registry.is_replicated(e) for e in ROUTES)
    for other in ("sms.created", "email.created", "user", "", "organizationInvitation.deleted"):
        assert not registry.is_replicated(other)


def test_dependents_name_the_kinds_and_their_column() -> None:
    def of(name: str) -> set[tuple[str, str]]:
        return {(k.name, p.column) for k, p in registry.dependents(registry.kind(name))}

    assert of("users") == {("memberships", "user_id"), ("sessions", "user_id")}
    assert of("organizations") == {
        ("memberships", "organization_id"),
        ("invitations", "organization_id"),
        ("domains", "organization_id"),
    }
    assert of("memberships") == of("invitations") == of("domains") == set()


def child(id: str, **columns: Any) -> dict[str, Any]:
    return {"id": id, "deleted_at": None, **columns}


async def test_ending_a_parent_ends_its_dependents(engine: AsyncEngine) -> None:
    m, inv, dom = t.organization_memberships, t.organization_invitations, t.organization_domains
    async with engine.begin() as conn:
        await conn.execute(
            insert(m),
            [
                child("m_1", organization_id="o_1", user_id="u_1"),
                child("m_2", organization_id="o_2", user_id="u_2"),
                child("m_3", organization_id="o_3", user_id="u_3"),
            ],
        )
        await conn.execute(
            insert(inv), [child("i_1", organization_id="o_2"), child("i_2", organization_id="o_9")]
        )
        await conn.execute(insert(dom), [child("d_1", organization_id="o_2")])
    async with engine.begin() as conn:
        await writes.end(conn, registry.kind("users"), [("u_1", AT)])
        await writes.end(conn, registry.kind("organizations"), [("o_2", AT)])

    def ends(found: list[dict[str, Any]]) -> dict[str, datetime | None]:
        return {r["id"]: r["deleted_at"] for r in found}

    assert ends(await rows(engine, m)) == {"m_1": AT, "m_2": AT, "m_3": None}
    assert ends(await rows(engine, inv)) == {"i_1": AT, "i_2": None}
    assert ends(await rows(engine, dom)) == {"d_1": AT}
    assert ends(await rows(engine, t.users)) == {"u_1": AT}  # a bare tombstone


def test_replica_tables_are_every_clerk_table_but_the_bookkeeping() -> None:
    tables = registry.replica_tables()
    assert len(tables) == len(set(tables))
    expected = {
        name
        for name in metadata.tables
        if name.startswith("clerk_") and not name.startswith("clerk_replica_")
    }
    assert {table.name for table in tables} == expected
    assert {inbox.name, runs.name, locks.name} <= set(metadata.tables)  # all are loaded


def test_personal_columns_belong_to_the_kinds_tables() -> None:
    for k in KINDS:
        for personal in k.personals:
            assert personal.column in k.table.c, k.name
            for column in personal.columns:
                assert column.table in k.tables, (k.name, column)
                # Keys are taken out of JSON objects only.
                assert not personal.keys or column.name == "raw", (k.name, column)
    (users,) = registry.kind("users").personals
    assert t.users.c.primary_email_address in users.columns
    assert t.email_addresses.c.email_address in users.columns
    # An invitation names two persons: its invitee (once accepted) and its inviter.
    invitee, inviter = registry.kind("invitations").personals
    assert (invitee.column, inviter.column) == ("user_id", "inviter_id")
    assert inviter.keys == ("public_inviter_data",)


def test_deleting_a_user_erases_it_and_the_kinds_naming_it() -> None:
    users = registry.kind("users")
    erased = {k.name for k in registry.erased_with(users)}
    assert erased == {
        "users",
        "memberships",
        "invitations",
        "sessions",
        "billing_subscription_items",
        "billing_subscriptions",
        "billing_payment_attempts",
    }
    # A waitlist entry names nobody else: it is its own person.
    entries = registry.kind("waitlist_entries")
    assert registry.persons() == (users, entries)
    assert registry.erased_with(entries) == (entries,)
    assert registry.erased_with(registry.kind("organizations")) == ()


def test_persons_erase_their_raw_payload() -> None:
    # The sweep finds deleted persons still to erase by a raw payload that is not NULL.
    for person in registry.persons():
        (own,) = [p for p in person.personals if p.column == "id"]
        assert person.table.c.raw in own.columns and not own.keys, person.name


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_listing_and_lookup_paths_use_only_columns_of_the_table() -> None:
    for k in KINDS:
        if k.lookup is not None:
            assert set(k.lookup.columns) <= set(k.table.c.keys()), k.name
        if k.listing is not None:
            used = fields(k.listing.path).union(*map(fields, k.listing.params.values()))
            assert used <= set(k.table.c.keys()), k.name
    # Every kind Clerk lists instance-wide; sessions it lists per user only (webhooks only).
    unlisted = {k.name for k in KINDS if k.listing is None or k.lookup is None}
    assert unlisted == {
        "sessions",
        "billing_plans",  # listed, but Clerk has no lookup: a complete listing is the proof
        "billing_subscription_items",
        "billing_subscriptions",
        "billing_payment_attempts",
    }
