"""Two Clerk instances side by side in one replica, each with its own signing secret and key:
webhooks through their own endpoints, applied together, then both reconciled, and neither ever
touches the other's rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_batch
from service.clerk.rows import RowOptions
from service.config import Settings
from service.reconcile.clerk_api import ClerkAPI
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.clerk_instances import populate
from tests.support.fake_clerk import FakeClerk, serve
from tests.support.reconciling import by_kind, run
from tests.support.replica_helpers import rows
from tests.support.settings import make_settings
from tests.support.signing import OTHER_SECRET, PREVIOUS_SECRET, signed

KINDS = ("organizations", "users", "memberships")
SECRETS = {"prod": PREVIOUS_SECRET, "staging": OTHER_SECRET}


@pytest.fixture
def fakes() -> Iterator[dict[str, tuple[FakeClerk, str]]]:
    prod = FakeClerk(key="sk_test_prod", instance_id="ins_prod")
    populate(prod, users=12, orgs=2, members_per_org=2, tag="p")
    staging = FakeClerk(key="sk_test_staging", instance_id="ins_staging")
    populate(staging, users=8, orgs=2, members_per_org=2, tag="s")
    with serve(prod) as prod_url, serve(staging) as staging_url:
        yield {"prod": (prod, prod_url), "staging": (staging, staging_url)}


@pytest.fixture
def kept(db_url: str, redis_url: str, fakes: dict[str, tuple[FakeClerk, str]]) -> Settings:
    environ: dict[str, Any] = {}
    for name, (fake, url) in fakes.items():
        upper = name.upper()
        environ[f"CLERK_{upper}_WEBHOOK_SIGNING_SECRET"] = SecretStr(SECRETS[name])
        environ[f"CLERK_{upper}_SECRET_KEY"] = SecretStr(fake.key)
        environ[f"CLERK_{upper}_API_URL"] = SecretStr(url)
    return make_settings(
        db_url,
        redis_url,
        clerk_instances="prod,staging",
        clerk_webhook_signing_secret=None,
        clerk_webhook_signing_secret_previous=None,
        instance_environ=environ,
        reconcile_max_requests_per_10s=100_000,
        reconcile_page_size=5,
    )


def event(instance_id: str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {**cp.envelope(event_type, data), "instance_id": instance_id}


def user(user_id: str, **fields: Any) -> dict[str, Any]:
    return cp.user(user_id, emails=[cp.email(f"idn_{user_id}", f"{user_id}@example.org")], **fields)


async def test_two_instances_share_one_replica_without_touching_each_others_rows(
    client_for: Any, engine: AsyncEngine, kept: Settings, fakes: dict[str, tuple[FakeClerk, str]]
) -> None:
    client = await client_for(kept)
    # Webhooks: each instance's through its endpoint, signed with its secret.
    deliveries = [
        ("prod", event("ins_prod", "user.created", user("user_hook_p", created_at=cp.T0))),
        ("staging", event("ins_staging", "user.created", user("user_hook_s", created_at=cp.T0))),
        ("staging", event("ins_staging", "user.created", user("user_late_s", created_at=cp.T0))),
    ]
    for name, envelope in deliveries:
        body, headers = signed(envelope, secret=SECRETS[name])
        answer = await client.post(f"/webhooks/clerk/{name}", content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        # The same delivery at the other instance's endpoint is refused there.
        other = "prod" if name == "staging" else "staging"
        refused = await client.post(f"/webhooks/clerk/{other}", content=body, headers=headers)
        assert refused.status_code == 401
    assert (await apply_batch(engine, RowOptions(), limit=50)).claimed == 3

    # Reconcile each instance with its own key.
    reports = {}
    for name, (_fake, _url) in fakes.items():
        instance = kept.for_instance(name)
        api = ClerkAPI(instance, backoff_max_seconds=0.05)
        try:
            reports[name] = await run(engine, api, instance, kinds=KINDS, force=True)
        finally:
            await api.close()
    assert all(r.ok for r in reports.values())
    stored = {u["id"]: u for u in await rows(engine, t.users)}
    of = {u["id"]: u["instance_id"] for u in stored.values()}
    assert sum(v == "ins_prod" for v in of.values()) == 12 + 1
    assert sum(v == "ins_staging" for v in of.values()) == 8 + 2
    # Each instance's run ended only its own rows missing from its own listing: the webhook
    # users Clerk's listing never had (forced: they exceed the safety share here).
    ended = {i for i, u in stored.items() if u["deleted_at"] is not None}
    assert ended == {"user_hook_p", "user_hook_s", "user_late_s"}
    assert by_kind(reports["prod"])["users"].tombstoned == 1
    assert by_kind(reports["staging"])["users"].tombstoned == 2
    for table in (t.email_addresses, t.organizations, t.organization_memberships):
        for row in await rows(engine, table):
            assert row["instance_id"] == ("ins_prod" if "_p" in row["id"] else "ins_staging")


async def test_staging_s_secret_cannot_touch_a_prod_user(
    client_for: Any, engine: AsyncEngine, kept: Settings, fakes: dict[str, tuple[FakeClerk, str]]
) -> None:
    """The issue's reproduction: deliveries signed with staging's secret, posted to staging's
    endpoint, about a prod user: renamed, deleted, erased. None of it reaches the prod row."""
    for name in fakes:
        instance = kept.for_instance(name)
        api = ClerkAPI(instance, backoff_max_seconds=0.05)
        try:
            assert (await run(engine, api, instance, kinds=KINDS)).ok
        finally:
            await api.close()
    victim = next(u for u in await rows(engine, t.users) if u["instance_id"] == "ins_prod")
    before = {k: victim[k] for k in ("first_name", "primary_email_address", "raw", "deleted_at")}
    client = await client_for(kept)
    renamed = user(victim["id"], first_name="Mallory", updated_at=cp.T0 + 10**9)
    attempts = [
        event("ins_prod", "user.updated", renamed),  # naming prod's instance: refused
        event("ins_staging", "user.updated", renamed),  # naming its own: guarded
        event("ins_staging", "user.deleted", cp.deleted("user", victim["id"])),
    ]
    for envelope in attempts:
        body, headers = signed(envelope, secret=SECRETS["staging"])
        answer = await client.post("/webhooks/clerk/staging", content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        result = await apply_batch(engine, RowOptions(), limit=10)
        assert result.claimed == 1
    after = (await rows(engine, t.users, id=victim["id"]))[0]
    assert {k: after[k] for k in before} == before
    assert after["instance_id"] == "ins_prod"
