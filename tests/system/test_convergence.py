"""Any delivery order converges to what Clerk holds (property-based, PostgreSQL and SQLite).

Hypothesis generates Clerk histories (users with changing emails, organizations, memberships
created, updated, deleted and re-created, invitations, permissions, roles with changing grants,
waitlist entries, sessions, billing subscriptions with their items and plans, payment attempts),
delivers their events in any order, with duplicates and with some dropped, then a reconcile
recovers what was dropped. The live replica must then equal the state Clerk's API lists, and
for the kinds no list holds (sessions, subscriptions, payment attempts) the newest snapshot
delivered, whatever the order; a reconcile leaves those alone."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_batch, apply_one
from service.clerk.rows import RowOptions
from service.config import Settings
from service.db.engine import create_engine
from service.db.errors import TransientError
from service.inbox.store import inbox
from service.reconcile.clerk_api import ClerkAPI
from service.reconcile.modes import ReconcileOptions
from service.reconcile.run import reconcile
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.clerk_history import PLANS, History, deliveries, histories
from tests.support.databases import truncate_pg
from tests.support.fake_clerk import KEY, FakeClerk, serve
from tests.support.replica_helpers import rows, store_event
from tests.support.settings import make_settings

EXAMPLES = int(os.environ.get("CONVERGENCE_EXAMPLES", "30"))


def newest(snapshots: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per id, the snapshot with the greatest updated_at (a tie carries the same state)."""
    found: dict[str, dict[str, Any]] = {}
    for snap in snapshots:
        if snap["id"] not in found or snap["updated_at"] > found[snap["id"]]["updated_at"]:
            found[snap["id"]] = snap
    return found


def webhook_only(h: History, delivered: list[dict[str, Any]], reconciled: bool) -> dict[str, Any]:
    """What the deliveries leave of the kinds reconcile cannot list (and the items' plans from
    webhooks alone). A session ends with its user's deletion: one delivered, or (after a
    reconcile) one the reconcile found, of a user the replica had heard of."""
    data = [(e["type"], e["data"]) for e in delivered]
    heard = {d["id"] for k, d in data if k.startswith("user.")}
    gone = {d["id"] for k, d in data if k == "user.deleted"}
    if reconciled:
        gone |= heard - set(h.users)
    items = [d for k, d in data if k.startswith("subscriptionItem.")]
    items += [i for k, d in data if k.startswith("subscription.") for i in d["items"]]
    return {
        "sessions": {
            s["id"]: (s["user_id"], s["status"], s["updated_at"])
            for s in newest(d for k, d in data if k.startswith("session.")).values()
            if s["user_id"] not in gone
        },
        "subscriptions": {
            s["id"]: (s["status"], s["updated_at"])
            for s in newest(d for k, d in data if k.startswith("subscription.")).values()
        },
        "payments": {
            a["id"]: (a["status"], a["updated_at"])
            for a in newest(d for k, d in data if k.startswith("paymentAttempt.")).values()
        },
        **(
            {}
            if reconciled
            else {
                "items": {
                    i["id"]: (i["status"], i["plan_id"], i["updated_at"])
                    for i in newest(items).values()
                },
                "plans": {i["plan"]["id"]: i["plan"]["slug"] for i in items},
            }
        ),
    }


def expected(h: History, delivered: list[dict[str, Any]], reconciled: bool) -> dict[str, Any]:
    """The live replica after `delivered`, and after a reconcile if `reconciled`."""
    listed = {
        "items": {i["id"]: (i["status"], i["plan_id"], i["updated_at"]) for i in h.items.values()},
        "plans": {f"cplan_{slug}": slug for slug in PLANS},
    }
    return {
        **webhook_only(h, delivered, reconciled),
        **(listed if reconciled else {}),
        "users": {
            u["id"]: (
                u["first_name"],
                u["updated_at"],
                sorted(e["id"] for e in u["email_addresses"]),
            )
            for u in h.users.values()
        },
        "orgs": {o["id"]: (o["name"], o["updated_at"]) for o in h.orgs.values()},
        "memberships": {
            m["id"]: (m["organization"]["id"], m["public_user_data"]["user_id"], m["role"])
            for m in h.memberships.values()
        },
        "invitations": {i["id"]: i["status"] for i in h.invitations.values()},
        "permissions": {p["id"]: (p["key"], p["updated_at"]) for p in h.permissions.values()},
        "roles": {
            r["id"]: (r["key"], r["updated_at"], sorted(g["id"] for g in r["permissions"]))
            for r in h.roles.values()
        },
        "waitlist": {w["id"]: w["status"] for w in h.waitlist.values()},
    }


def serve_history(fake: FakeClerk, history: History) -> None:
    """Make the fake Backend API list what Clerk holds at the end of `history`."""
    with fake.lock:
        fake.users = list(history.users.values())
        fake.organizations = list(history.orgs.values())
        fake.memberships = list(history.memberships.values())
        fake.invitations = list(history.invitations.values())
        fake.domains = []
        fake.permissions = list(history.permissions.values())
        fake.roles = list(history.roles.values())
        fake.waitlist_entries = list(history.waitlist.values())
        fake.billing_plans = [cp.billing_plan(f"cplan_{slug}", slug=slug) for slug in PLANS]
        fake.billing_subscription_items = [
            cp.listed_subscription_item(
                i["id"],
                plan_slug=i["plan"]["slug"],
                status=i["status"],
                created_at=i["created_at"],
                updated_at=i["updated_at"],
            )
            for i in history.items.values()
        ]


def ms(value: Any) -> int:
    return int(value.timestamp() * 1000)


async def replica_state(engine: AsyncEngine) -> dict[str, Any]:
    def live(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in found if r["deleted_at"] is None]

    emails = await rows(engine, t.email_addresses)
    grants = await rows(engine, t.role_permissions)
    return {
        "users": {
            u["id"]: (
                u["first_name"],
                ms(u["updated_at"]),
                sorted(e["id"] for e in emails if e["user_id"] == u["id"]),
            )
            for u in live(await rows(engine, t.users))
        },
        "orgs": {
            o["id"]: (o["name"], ms(o["updated_at"]))
            for o in live(await rows(engine, t.organizations))
        },
        "memberships": {
            m["id"]: (m["organization_id"], m["user_id"], m["role"])
            for m in live(await rows(engine, t.organization_memberships))
        },
        "invitations": {
            i["id"]: i["status"] for i in live(await rows(engine, t.organization_invitations))
        },
        "permissions": {
            p["id"]: (p["key"], ms(p["updated_at"]))
            for p in live(await rows(engine, t.permissions))
        },
        "roles": {
            r["id"]: (
                r["key"],
                ms(r["updated_at"]),
                sorted(g["permission_id"] for g in grants if g["role_id"] == r["id"]),
            )
            for r in live(await rows(engine, t.roles))
        },
        "waitlist": {w["id"]: w["status"] for w in live(await rows(engine, t.waitlist_entries))},
        "sessions": {
            x["id"]: (x["user_id"], x["status"], ms(x["updated_at"]))
            for x in live(await rows(engine, t.sessions))
        },
        "subscriptions": {
            x["id"]: (x["status"], ms(x["updated_at"]))
            for x in live(await rows(engine, t.billing_subscriptions))
        },
        "payments": {
            x["id"]: (x["status"], ms(x["updated_at"]))
            for x in live(await rows(engine, t.billing_payment_attempts))
        },
        "items": {
            x["id"]: (x["status"], x["plan_id"], ms(x["updated_at"]))
            for x in live(await rows(engine, t.billing_subscription_items))
        },
        "plans": {x["id"]: x["slug"] for x in live(await rows(engine, t.billing_plans))},
    }


@pytest.fixture(scope="module")
def fake_server() -> Iterator[tuple[FakeClerk, str]]:
    fake = FakeClerk()
    with serve(fake) as url:
        yield fake, url


@pytest.fixture(params=["postgresql", "sqlite"])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A callable giving an empty migrated database for each Hypothesis example."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")

        def reset() -> str:
            truncate_pg(url)
            return str(url)

        return reset
    template: Path = request.getfixturevalue("sqlite_template")
    counter = iter(range(10**9))

    def fresh() -> str:
        path = tmp_path / f"example-{next(counter)}.db"
        shutil.copy(template, path)
        return f"sqlite:///{path}"

    return fresh


@asynccontextmanager
async def replica(
    database_url: str, redis_url: str, clerk_url: str, concurrency: int = 3
) -> AsyncIterator[tuple[Settings, AsyncEngine, ClerkAPI]]:
    """Settings, engine and Clerk client for one example; reconcile pages of 2 to page a lot,
    `concurrency` requests in flight (users in created_at ranges, the rest in offset windows;
    pages walked side by side commit in whatever order their answers come back)."""
    settings_ = make_settings(
        database_url,
        redis_url,
        clerk_secret_key=KEY,
        clerk_api_url=clerk_url,
        reconcile_page_size=2,
        reconcile_max_requests_per_10s=100_000,
        reconcile_concurrency=concurrency,
    )
    engine = create_engine(settings_)
    api = ClerkAPI(settings_, backoff_max_seconds=0.05)
    try:
        yield settings_, engine, api
    finally:
        await api.close()
        await engine.dispose()


async def converge(
    database_url: str,
    redis_url: str,
    clerk_url: str,
    events: list[dict[str, Any]],
    batch: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The live replica after the deliveries alone, and after a reconcile.

    With `batch`, events are stored `batch` at a time and each lot is applied as one batch
    (as the worker does under load); otherwise each is applied as it arrives.

    A run must repeat exactly for Hypothesis to replay and shrink a failure: a broken ordering
    rule that fails only sometimes ends in FlakyStrategyDefinition, not in the history that
    broke it. So each delivery's svix-id is its place in `events`, not a random one (a batch
    is claimed in an order the database picks by id), and the reconcile walks one request at
    a time (pages walked side by side commit in the order the answers come back); the
    concurrent test below is where those races are exercised.
    """
    ids = [f"msg_{n:06d}" for n in range(len(events))]
    async with replica(database_url, redis_url, clerk_url, concurrency=1) as (
        settings_,
        engine,
        api,
    ):
        if batch is None:
            for svix_id, event in zip(ids, events, strict=True):
                await apply_one(engine, await store_event(engine, event, svix_id), RowOptions())
        else:
            for start in range(0, len(events), batch):
                lot = range(start, min(start + batch, len(events)))
                for n in lot:
                    await store_event(engine, events[n], ids[n])
                assert (await apply_batch(engine, RowOptions(), batch)).retried == 0
        failed = [r for r in await rows(engine, inbox) if r["status"] == "failed"]
        assert failed == [], [r["last_error"] for r in failed]
        from_webhooks = await replica_state(engine)
        report = await reconcile(engine, api, settings_, ReconcileOptions(force=True, restart=True))
        assert report.ok, report.summary()
        return from_webhooks, await replica_state(engine)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_delivery_order_converges_to_clerk(
    data: st.DataObject, fresh_database: Any, redis_url: str, fake_server: tuple[FakeClerk, str]
) -> None:
    history = data.draw(histories(), label="history")
    events, dropped = data.draw(deliveries(history), label="deliveries")
    batch = data.draw(st.none() | st.integers(2, 40), label="batch")
    fake, url = fake_server
    serve_history(fake, history)
    from_webhooks, reconciled = asyncio.run(
        converge(fresh_database(), redis_url, url, events, batch)
    )
    if dropped == 0:
        # Webhooks alone, in any order and with duplicates, reach Clerk's state...
        assert from_webhooks == expected(history, events, reconciled=False)
    # ...and a reconcile recovers whatever was dropped, without disturbing what is right (nor
    # what no list holds: the newest delivered snapshot of those stays).
    assert reconciled == expected(history, events, reconciled=True)


async def converge_concurrently(
    database_url: str,
    redis_url: str,
    clerk_url: str,
    events: list[dict[str, Any]],
    *,
    with_reconcile: bool,
) -> dict[str, Any]:
    """Four appliers at once, two event by event and two in batches (as worker slots would),
    optionally beside a reconcile."""
    async with replica(database_url, redis_url, clerk_url) as (settings_, engine, api):
        ids: asyncio.Queue[str] = asyncio.Queue()
        for event in events:
            ids.put_nowait(await store_event(engine, event))

        async def applier() -> None:
            while not ids.empty():
                svix_id = ids.get_nowait()
                for _ in range(20):
                    try:
                        await apply_one(engine, svix_id, RowOptions())
                        break
                    except TransientError:  # a lock or unique race with another applier
                        await asyncio.sleep(0.01)
                else:
                    raise AssertionError(f"{svix_id} never applied")

        async def batch_applier() -> None:
            # Claims skip rows another applier holds (SKIP LOCKED); small batches make the
            # appliers interleave.
            while True:
                try:
                    result = await apply_batch(engine, RowOptions(), 3)
                except TransientError:
                    result = None
                if result is not None and result.claimed == 0 and ids.empty():
                    return
                await asyncio.sleep(0)

        work: list[Coroutine[Any, Any, Any]] = [applier() for _ in range(2)]
        work += [batch_applier() for _ in range(2)]
        if with_reconcile:
            work.append(
                reconcile(engine, api, settings_, ReconcileOptions(force=True, restart=True))
            )
        results = await asyncio.gather(*work)
        if with_reconcile:
            assert results[-1].ok, results[-1].summary()
        # An event that lost a race while in a batch backs off; its retry comes later.
        for row in await rows(engine, inbox, status="pending"):
            for _ in range(20):
                try:
                    await apply_one(engine, row["svix_id"], RowOptions())
                    break
                except TransientError:
                    await asyncio.sleep(0.01)
        failed = [r for r in await rows(engine, inbox) if r["status"] != "applied"]
        assert [r for r in failed if r["status"] != "ignored"] == []
        return await replica_state(engine)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), with_reconcile=st.booleans())
def test_concurrent_appliers_and_a_reconcile_still_converge(
    data: st.DataObject,
    with_reconcile: bool,
    pg_url: str,
    redis_url: str,
    fake_server: tuple[FakeClerk, str],
) -> None:
    history = data.draw(histories(), label="history")
    events = data.draw(st.permutations(history.events), label="order")  # all delivered
    fake, url = fake_server
    serve_history(fake, history)
    truncate_pg(pg_url)
    state = asyncio.run(
        converge_concurrently(pg_url, redis_url, url, list(events), with_reconcile=with_reconcile)
    )
    assert state == expected(history, list(events), reconciled=with_reconcile)
