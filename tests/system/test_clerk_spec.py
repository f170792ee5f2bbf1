"""Clerk's published specs are the truth (tests/clerk_openapi/): the fake Backend API answers
only what the backend spec allows, the payloads the tests send are what the webhooks spec
allows, and every payload the webhooks spec allows for a replicated type applies, on PostgreSQL
and SQLite, with nothing failed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_batch
from service.apply.plan import Event, plan
from service.clerk.rows import RowOptions
from service.kinds.registry import ROUTES
from service.reconcile.clerk_api import ClerkAPI
from service.reconcile.modes import ReconcileOptions
from service.reconcile.report import RunReport
from service.reconcile.run import reconcile
from tests.support import clerk_payloads as cp
from tests.support import clerk_spec
from tests.support import tables as t
from tests.support.clerk_instances import populate
from tests.support.fake_clerk import KEY, FakeClerk, serve
from tests.support.replica_helpers import rows, store_event
from tests.support.settings import make_settings
from tests.support.spec_payloads import payloads

REPLICATED = sorted(ROUTES)


def problems(schema: dict[str, Any], value: Any) -> list[str]:
    errors = jsonschema.Draft7Validator(schema).iter_errors(value)
    return [f"{list(e.absolute_path)}: {e.message[:160]}" for e in errors]


@pytest.fixture(scope="module")
def fake_url() -> Iterator[tuple[FakeClerk, str]]:
    fake = FakeClerk()
    populate(fake, users=6, orgs=2, members_per_org=3)
    with serve(fake) as url:
        yield fake, url


def answers(fake: FakeClerk) -> list[tuple[str, str, dict[str, str], str]]:
    """(spec path, our path, params, status) for every request reconcile makes of Clerk."""
    user, org = fake.users[0]["id"], fake.organizations[0]["id"]
    invitation = next(i["id"] for i in fake.invitations if i["organization_id"] == org)
    role = fake.roles[0]["id"]
    return [
        ("/users", "users", {"order_by": "+created_at", "limit": "3"}, "200"),
        ("/users", "users", {"starting_after": user, "limit": "2"}, "200"),
        ("/users/count", "users/count", {}, "200"),
        (
            "/users/count",
            "users/count",
            {"created_at_after": str(cp.T0), "created_at_before": str(cp.T0 + 3)},
            "200",
        ),
        ("/users", "users", {"order_by": "-updated_at", "limit": "3", "offset": "1"}, "200"),
        ("/users", "users", {"user_id": [user, "user_gone"], "limit": "100"}, "200"),
        ("/instance", "instance", {}, "200"),
        ("/users/{user_id}", f"users/{user}", {}, "200"),
        ("/users/{user_id}", "users/user_gone", {}, "404"),
        ("/users", "users", {"limit": "0"}, "422"),
        ("/organizations", "organizations", {"include_members_count": "true"}, "200"),
        ("/organizations", "organizations", {}, "200"),
        (
            "/organizations/{organization_id}/memberships",
            f"organizations/{org}/memberships",
            {"limit": "2", "offset": "1", "order_by": "+created_at"},
            "200",
        ),
        ("/organizations/{organization_id}", f"organizations/{org}", {}, "200"),
        ("/organization_memberships", "organization_memberships", {"offset": "1"}, "200"),
        (
            "/organizations/{organization_id}/memberships",
            f"organizations/{org}/memberships",
            {"user_id": fake.memberships[0]["public_user_data"]["user_id"]},
            "200",
        ),
        ("/organization_invitations", "organization_invitations", {}, "200"),
        (
            "/organizations/{organization_id}/invitations/{invitation_id}",
            f"organizations/{org}/invitations/{invitation}",
            {},
            "200",
        ),
        ("/organization_domains", "organization_domains", {}, "200"),
        ("/organizations/{organization_id}/domains", f"organizations/{org}/domains", {}, "200"),
        ("/organization_roles", "organization_roles", {}, "200"),
        ("/organization_roles/{organization_role_id}", f"organization_roles/{role}", {}, "200"),
        ("/organization_permissions", "organization_permissions", {}, "200"),
        ("/waitlist_entries", "waitlist_entries", {"query": "w1@"}, "200"),
        ("/billing/plans", "billing/plans", {"paginated": "true"}, "200"),
        (
            "/billing/subscription_items",
            "billing/subscription_items",
            {"paginated": "true", "include_free": "true"},
            "200",
        ),
    ]


@pytest.mark.parametrize("sparse", [0.0, 0.6])
def test_the_fake_answers_only_what_the_backend_spec_allows(
    fake_url: tuple[FakeClerk, str], sparse: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = fake_url
    monkeypatch.setattr(fake, "sparse", sparse)  # leaving optional fields out, too
    found: dict[str, list[str]] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        for spec_path, path, params, status in answers(fake):
            response = client.get(f"/{path}", params=params)
            assert str(response.status_code) == status, (path, response.text)
            schema = clerk_spec.backend_response(spec_path, status)
            found[f"{status} {path} {params}"] = problems(schema, response.json())
        refused = httpx.get(f"{url}/users", headers={"Authorization": "Bearer wrong"})
        schema = clerk_spec.backend_response("/users", "401")
        found["401 users"] = problems(schema, refused.json())
    assert {k: v for k, v in found.items() if v} == {}


def test_every_order_the_spec_lists_is_answered(fake_url: tuple[FakeClerk, str]) -> None:
    _, url = fake_url
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        for path, field in [
            ("users", "-last_sign_in_at"),
            ("users", "+username"),
            ("organizations", "-members_count"),
            ("organization_memberships", "+first_name"),
            ("organization_invitations", "-email_address"),
            ("organization_domains", "+name"),
        ]:
            assert client.get(f"/{path}", params={"order_by": field}).status_code == 200, path
        assert client.get("/users", params={"order_by": "+favourite_colour"}).status_code == 422


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("user.created", cp.user()),
        ("user.deleted", cp.deleted("user", "user_1")),
        ("organization.created", cp.organization()),
        ("organizationMembership.created", cp.membership()),
        (
            "organizationInvitation.accepted",
            # The schema requires a nested `data` object that Clerk's own example leaves out.
            {**cp.invitation(status="accepted", user_id="user_1"), "data": {}},
        ),
        ("organizationDomain.created", cp.domain()),
        ("role.created", cp.role()),
        ("permission.created", cp.permission()),
        ("waitlistEntry.created", cp.waitlist_entry()),
        ("session.created", cp.session()),
        ("subscription.created", cp.subscription()),
        ("subscriptionItem.active", cp.subscription_item()),
        ("paymentAttempt.created", cp.payment_attempt()),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_the_payloads_the_tests_send_are_what_the_webhooks_spec_allows(
    event_type: str, data: dict[str, Any]
) -> None:
    assert problems(clerk_spec.webhook_events()[event_type], data) == []


def test_the_spec_lists_every_type_the_replica_applies() -> None:
    assert set(REPLICATED) <= set(clerk_spec.webhook_events())


@pytest.mark.parametrize("event_type", REPLICATED)
def test_every_payload_the_spec_allows_plans(event_type: str) -> None:
    schema = clerk_spec.webhook_events()[event_type]

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(payloads(schema))
    def plans(data: dict[str, Any]) -> None:
        assert problems(schema, data) == []  # the generator keeps to the spec
        plan(Event("msg_spec", event_type, data, datetime.now(UTC)), RowOptions())

    plans()


def events() -> st.SearchStrategy[list[tuple[str, Any]]]:
    schemas = clerk_spec.webhook_events()
    one = st.sampled_from(REPLICATED).flatmap(lambda t: st.tuples(st.just(t), payloads(schemas[t])))
    return st.lists(one, min_size=1, max_size=12)


def drawn(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """`n` examples Hypothesis draws (from simple to varied), to use where it cannot drive the
    test itself (an async test on a database)."""
    out: list[Any] = []

    @settings(max_examples=n, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: Any) -> None:
        out.append(value)

    collect()
    return out


async def test_every_payload_the_spec_allows_applies(engine: AsyncEngine) -> None:
    # Stored and applied as the worker does, in batches: each becomes rows, none fails.
    for batch in drawn(events(), 30):
        for event_type, data in batch:
            await store_event(engine, cp.envelope(event_type, data))
        result = await apply_batch(engine, RowOptions(), 100)
        assert dict(result.outcomes) == {"applied": len(batch)}, (result, batch)


def instance() -> st.SearchStrategy[dict[str, list[dict[str, Any]]]]:
    """A Clerk instance of objects the backend spec allows (ids unique per collection)."""

    def unique(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list({o["id"]: o for o in objects}.values())

    return st.fixed_dictionaries(
        {
            name: st.lists(payloads(clerk_spec.backend_schema(schema)), max_size=4).map(unique)
            for name, schema in clerk_spec.LISTED.items()
        }
    )


async def reconcile_from(
    fake: FakeClerk, engine: AsyncEngine, db_url: str, redis_url: str
) -> RunReport:
    """A forced reconcile (tombstoning whatever the fake no longer lists) against `fake`."""
    with serve(fake) as url:
        settings = make_settings(
            db_url,
            redis_url,
            clerk_secret_key=KEY,
            clerk_api_url=url,
            reconcile_max_requests_per_10s=100_000,
            reconcile_max_attempts=2,
        )
        api = ClerkAPI(settings, backoff_max_seconds=0.01)
        try:
            return await reconcile(engine, api, settings, ReconcileOptions(force=True, full=True))
        finally:
            await api.close()


async def test_reconcile_takes_every_object_the_backend_spec_allows(
    engine: AsyncEngine, db_url: str, redis_url: str
) -> None:
    # Backfilled from lists of generated objects: every one is listed and stored, none is
    # invalid. (Each instance replaces the one before: `force` lets it tombstone all of that.)
    for objects in drawn(instance(), 12):
        report = await reconcile_from(FakeClerk(**objects), engine, db_url, redis_url)
        assert report.ok, report.summary()
        for p in report.passes:
            assert p.invalid == 0, (p.kind, objects[p.kind])
            assert p.listed == len(objects[p.kind]), p.kind


async def test_the_fake_takes_its_round_trip_and_answers_many_at_once() -> None:
    # The latency reconcile benchmarks run against (issue 16): each answer waits, but not for
    # the others, as separate round trips to Clerk would.
    fake = FakeClerk(latency_seconds=0.2, jitter_seconds=0.05)
    populate(fake, users=3, orgs=1, members_per_org=1)
    with serve(fake) as url:
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {KEY}"}
        ) as client:
            started = time.monotonic()
            answers = await asyncio.gather(*(client.get("/users") for _ in range(8)))
            took = time.monotonic() - started
    assert all(a.status_code == 200 for a in answers)
    assert 0.15 <= took < 8 * 0.15, took  # at least one round trip, far less than eight


def test_the_sparse_fake_leaves_optional_fields_out_sometimes() -> None:
    fake = FakeClerk(sparse=0.5)
    populate(fake, users=40, orgs=10, members_per_org=4)
    served = [fake._served("memberships", m) for m in fake.memberships]
    without = [m for m in served if "public_user_data" not in m]
    assert 0 < len(without) < len(served)
    assert [fake._served("memberships", m) for m in fake.memberships] == served  # stable


async def test_a_field_clerk_leaves_out_is_null_until_a_newer_snapshot_fills_it_in(
    engine: AsyncEngine, db_url: str, redis_url: str
) -> None:
    fake = FakeClerk(sparse=0.5)
    populate(fake, users=12, orgs=8, members_per_org=3)
    left_out = [
        m["id"]
        for m in fake.memberships
        if "public_user_data" not in fake._served("memberships", m)
    ]
    no_org = [
        i["id"] for i in fake.invitations if "organization_id" not in fake._served("invitations", i)
    ]
    assert left_out and no_org

    async def run() -> None:
        report = await reconcile_from(fake, engine, db_url, redis_url)
        assert report.ok, report.summary()
        assert [p.kind for p in report.passes if p.invalid] == []

    await run()  # nothing fails: what is left out is stored NULL
    memberships = await rows(engine, t.organization_memberships)
    assert sorted(m["id"] for m in memberships if m["user_id"] is None) == sorted(left_out)
    invitations = await rows(engine, t.organization_invitations)
    assert sorted(i["id"] for i in invitations if i["organization_id"] is None) == sorted(no_org)

    fake.sparse = 0.0  # Clerk's next snapshots carry them: a reconcile fills them in
    for obj in [*fake.memberships, *fake.invitations]:
        obj["updated_at"] += 1000
    await run()
    assert [m for m in await rows(engine, t.organization_memberships) if m["user_id"] is None] == []
    assert [
        i for i in await rows(engine, t.organization_invitations) if i["organization_id"] is None
    ] == []
