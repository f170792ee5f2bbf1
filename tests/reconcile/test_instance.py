"""Reconcile per instance: it learns which Clerk instance its key belongs to, names every row it
writes with it, and considers only that instance's rows for deletion, so two instances
reconciled into one replica never touch each other's rows."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.inbox.instances import InstanceConflict, instances
from service.inbox.store import Status
from service.reconcile.checkpoints import runs
from service.reconcile.clerk_api import ClerkAPI
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.clerk_instances import populate
from tests.support.fake_clerk import FakeClerk, serve
from tests.support.reconciling import by_kind, live, run
from tests.support.replica_helpers import deliver, rows

# Every kind whose ids the tagged fakes keep apart (billing objects carry shared plan ids).
KINDS = ("organizations", "users", "memberships", "invitations", "domains", "roles")


@pytest.fixture
def fake() -> FakeClerk:
    """Prod: its own key and instance id, ids tagged p."""
    fake = FakeClerk(key="sk_test_prod", instance_id="ins_prod", environment_type="production")
    populate(fake, users=30, orgs=4, members_per_org=3, tag="p")
    return fake


@pytest.fixture
def staging() -> FakeClerk:
    fake = FakeClerk(key="sk_test_staging", instance_id="ins_staging")
    populate(fake, users=20, orgs=3, members_per_org=2, tag="s")
    return fake


@pytest.fixture
def staging_url(staging: FakeClerk) -> Iterator[str]:
    with serve(staging) as url:
        yield url


@pytest.fixture
def kept(rsettings: Settings, clerk_url: str, staging_url: str) -> Settings:
    """An install keeping prod and staging, each with its own key and API."""
    return rsettings.updated(
        clerk_instances="prod,staging",
        clerk_secret_key=None,
        instance_environ={
            "CLERK_PROD_SECRET_KEY": SecretStr("sk_test_prod"),
            "CLERK_PROD_API_URL": SecretStr(clerk_url),
            "CLERK_STAGING_SECRET_KEY": SecretStr("sk_test_staging"),
            "CLERK_STAGING_API_URL": SecretStr(staging_url),
        },
    )


async def reconcile_instance(engine: AsyncEngine, settings: Settings, **options: Any) -> Any:
    api = ClerkAPI(settings, backoff_max_seconds=0.05)
    try:
        return await run(engine, api, settings, kinds=KINDS, **options)
    finally:
        await api.close()


async def test_a_run_names_its_instance_and_every_row_it_writes(
    engine: AsyncEngine, kept: Settings
) -> None:
    prod = kept.for_instance("prod")
    report = await reconcile_instance(engine, prod)
    assert report.ok and report.instance == "prod"
    async with engine.connect() as conn:
        (known,) = (await conn.execute(select(instances))).all()
        (listed,) = (await conn.execute(select(runs.c.instance))).all()
    assert (known.name, known.instance_id, known.environment_type) == (
        "prod",
        "ins_prod",
        "production",
    )
    assert listed.instance == "prod"
    for table in (t.users, t.email_addresses, t.organizations, t.organization_memberships):
        written = await rows(engine, table)
        assert written and {r["instance_id"] for r in written} == {"ins_prod"}, table.name


async def test_two_instances_side_by_side_never_touch_each_others_rows(
    engine: AsyncEngine, kept: Settings, fake: FakeClerk, staging: FakeClerk
) -> None:
    prod, stage = kept.for_instance("prod"), kept.for_instance("staging")
    # Side by side: each has its own lock, run and key.
    both = await asyncio.gather(reconcile_instance(engine, prod), reconcile_instance(engine, stage))
    assert all(r.ok for r in both)
    users = await rows(engine, t.users)
    assert sum(u["instance_id"] == "ins_prod" for u in users) == 30
    assert sum(u["instance_id"] == "ins_staging" for u in users) == 20

    # Staging's users are not in prod's listing, yet prod's run never counts them missing
    # (had it, their 20 would pass the safety share and refuse the pass).
    fake.delete("users", "user_p00003")
    report = await reconcile_instance(engine, prod)
    assert report.ok and by_kind(report)["users"].tombstoned == 1
    gone = {u["id"] for u in await rows(engine, t.users) if u["deleted_at"] is not None}
    assert gone == {"user_p00003"}
    assert len([i for i in await live(engine, t.users) if i.startswith("user_s")]) == 20

    # And staging's own deletions stay staging's.
    staging.delete("organizations", "org_s0001")
    report = await reconcile_instance(engine, stage)
    assert report.ok and by_kind(report)["organizations"].tombstoned == 1
    ended = await rows(engine, t.organization_memberships, organization_id="org_s0001")
    assert ended and all(m["deleted_at"] is not None for m in ended)
    prod_orgs = [o for o in await rows(engine, t.organizations) if o["id"].startswith("org_p")]
    assert len(prod_orgs) == 4 and all(o["deleted_at"] is None for o in prod_orgs)


async def test_rows_naming_no_instance_are_the_only_instances_to_fill_in_and_to_end(
    engine: AsyncEngine, rsettings: Settings, fake: FakeClerk
) -> None:
    single = rsettings.updated(clerk_secret_key=SecretStr("sk_test_prod"))
    assert (await reconcile_instance(engine, single)).ok
    # Rows stored before the column existed name no instance.
    async with engine.begin() as conn:
        await conn.execute(update(t.users).values(instance_id=None))
    unnamed = cp.envelope("user.created", cp.user("user_unnamed", created_at=cp.T0))
    await deliver(engine, {**unnamed, "instance_id": "ins_prod"})  # the key's, as Clerk sends
    async with engine.begin() as conn:
        await conn.execute(
            update(t.users).where(t.users.c.id == "user_unnamed").values(instance_id=None)
        )
    report = await reconcile_instance(engine, single)
    assert report.ok and by_kind(report)["users"].tombstoned == 1  # the only instance's
    stored = {u["id"]: u for u in await rows(engine, t.users)}
    assert stored["user_unnamed"]["deleted_at"] is not None
    assert {u["instance_id"] for i, u in stored.items() if i != "user_unnamed"} == {"ins_prod"}


async def test_with_several_instances_a_row_naming_none_is_nobodys_to_end(
    engine: AsyncEngine, kept: Settings
) -> None:
    await deliver(engine, cp.envelope("user.created", cp.user("user_unnamed", created_at=cp.T0)))
    async with engine.begin() as conn:
        await conn.execute(update(t.users).values(instance_id=None))
    report = await reconcile_instance(engine, kept.for_instance("prod"))
    assert report.ok and by_kind(report)["users"].tombstoned == 0
    assert "user_unnamed" in await live(engine, t.users)


async def test_a_key_now_of_another_instance_is_recorded_as_that_one(
    engine: AsyncEngine, kept: Settings, fake: FakeClerk
) -> None:
    prod = kept.for_instance("prod")
    assert (await reconcile_instance(engine, prod)).ok
    fake.instance_id = "ins_prod_rebuilt"
    assert (await reconcile_instance(engine, prod)).ok
    async with engine.connect() as conn:
        (known,) = (await conn.execute(select(instances))).all()
    assert known.instance_id == "ins_prod_rebuilt"


async def test_the_key_binds_its_endpoint_and_displaces_a_first_delivery(
    engine: AsyncEngine, kept: Settings
) -> None:
    """A first delivery to staging naming prod's instance bound staging to it (trust on first
    use); prod's key says whose it is: staging's binding gives way, and staging's endpoint
    refuses prod's instance from then on."""
    forged = {**cp.envelope("user.created", cp.user("user_early")), "instance_id": "ins_prod"}
    assert await deliver(engine, forged, instance="staging") is Status.APPLIED
    assert (await reconcile_instance(engine, kept.for_instance("prod"))).ok
    async with engine.connect() as conn:
        bound = {r.name: (r.instance_id, r.bound_by) for r in await conn.execute(select(instances))}
    assert bound == {"prod": ("ins_prod", "reconcile")}
    again = {**cp.envelope("user.created", cp.user("user_late")), "instance_id": "ins_prod"}
    assert await deliver(engine, again, instance="staging") is Status.FAILED
    assert await rows(engine, t.users, id="user_late") == []


async def test_a_key_of_another_name_s_instance_fails_the_run(
    engine: AsyncEngine, kept: Settings, clerk_url: str
) -> None:
    assert (await reconcile_instance(engine, kept.for_instance("prod"))).ok
    # staging's key is prod's by mistake: one Clerk instance, two names.
    environ = {**kept.instance_environ, "CLERK_STAGING_SECRET_KEY": SecretStr("sk_test_prod")}
    environ["CLERK_STAGING_API_URL"] = SecretStr(clerk_url)
    mixed = kept.updated(instance_environ=environ)
    with pytest.raises(InstanceConflict, match="already bound to 'prod'"):
        await reconcile_instance(engine, mixed.for_instance("staging"))


async def test_a_configured_instance_id_the_key_contradicts_fails_the_run(
    engine: AsyncEngine, kept: Settings
) -> None:
    environ = {**kept.instance_environ, "CLERK_PROD_INSTANCE_ID": SecretStr("ins_other")}
    configured = kept.updated(instance_environ=environ)
    with pytest.raises(InstanceConflict, match="ins_other"):
        await reconcile_instance(engine, configured.for_instance("prod"))
    assert await rows(engine, t.users) == []
