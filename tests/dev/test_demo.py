"""The demo world: every payload is what Clerk's webhooks spec allows, its ids refer to each
other, it applies through the real endpoint on PostgreSQL and SQLite, and a second sending
changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.dev import demo
from service.dev.demo import demo_events
from service.dev.send import demo_svix_id
from tests.support import clerk_spec
from tests.support import tables as t
from tests.support.demo_world import ClientFor, apply_all, deliver_demo
from tests.support.replica_helpers import one, rows

EVENTS = demo_events()


@pytest.mark.parametrize(
    "event", EVENTS, ids=[f"{e['type']}:{e['data']['id']}" for e in demo_events()]
)
def test_every_demo_payload_is_what_the_webhooks_spec_allows(event: dict[str, Any]) -> None:
    schema = clerk_spec.webhook_events()[event["type"]]
    errors = jsonschema.Draft7Validator(schema).iter_errors(event["data"])
    assert [f"{list(e.absolute_path)}: {e.message[:160]}" for e in errors] == []


def test_the_demo_is_the_same_every_time() -> None:
    assert demo_events() == EVENTS
    ids = [demo_svix_id(e) for e in EVENTS]
    assert len(set(ids)) == len(EVENTS)
    assert [demo_svix_id(e) for e in demo_events()] == ids


def test_the_demo_ids_refer_to_each_other() -> None:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in EVENTS:
        by_type.setdefault(event["type"], []).append(event["data"])
    users = {u["id"] for u in by_type["user.created"]}
    (org,) = by_type["organization.created"]
    roles = {r["key"]: {p["key"] for p in r["permissions"]} for r in by_type["role.created"]}
    permissions = {p["key"] for p in by_type["permission.created"]}
    members = by_type["organizationMembership.created"]
    assert {m["public_user_data"]["user_id"] for m in members} == users
    assert all(m["organization"]["id"] == org["id"] for m in members)
    assert all(m["role"] in roles for m in members)
    assert set().union(*roles.values()) <= permissions
    assert any(demo.POSTS_CREATE in roles[m["role"]] for m in members)
    for user in by_type["user.created"]:
        emails = {e["id"] for e in user["email_addresses"]}
        assert user["primary_email_address_id"] in emails
    (invitation,) = by_type["organizationInvitation.created"]
    assert invitation["organization_id"] == org["id"] and invitation["role"] in roles
    (session,) = by_type["session.created"]
    assert session["user_id"] in users and session["last_active_organization_id"] == org["id"]
    (subscription,) = by_type["subscription.created"]
    assert subscription["payer"]["organization_id"] == org["id"]
    assert all(i["payer"]["organization_id"] == org["id"] for i in subscription["items"])


async def snapshot(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    tables: list[Table] = [getattr(t, name) for name in t.__all__]
    return {table.name: await rows(engine, table) for table in tables}


async def test_the_demo_applies_through_the_endpoint_and_twice_is_harmless(
    engine: AsyncEngine, settings: Settings, client_for: ClientFor
) -> None:
    client = await client_for(settings)
    first = await deliver_demo(client)
    assert [status for status, _ in first] == [200] * len(EVENTS), first
    assert await apply_all(engine) == {"applied": len(EVENTS)}

    john = await one(engine, t.users, demo.JOHN)
    assert john["primary_email_address"] == "john@example.com"
    assert (await one(engine, t.organizations, demo.ORG))["slug"] == demo.ORG_SLUG
    assert len(await rows(engine, t.organization_memberships, organization_id=demo.ORG)) == 2
    assert len(await rows(engine, t.role_permissions, permission_key=demo.POSTS_CREATE)) == 2
    assert len(await rows(engine, t.organization_invitations, status="pending")) == 1
    assert len(await rows(engine, t.sessions, user_id=demo.JOHN, status="active")) == 1
    (item,) = await rows(engine, t.billing_subscription_items, organization_id=demo.ORG)
    assert item["plan_slug"] == demo.PLAN_SLUG and item["status"] == "active"

    before = await snapshot(engine)
    again = await deliver_demo(client)
    assert [answer for _, answer in again] == [{"status": "duplicate"}] * len(EVENTS)
    assert await apply_all(engine) == {}
    assert await snapshot(engine) == before


def test_the_getting_started_page_names_every_object_of_the_demo() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs/getting-started.md").read_text()
    objects = {e["data"]["id"] for e in EVENTS}
    objects |= {i["id"] for e in EVENTS for i in e["data"].get("items", [])}
    assert sorted(o for o in objects if f"`{o}`" not in page) == []
