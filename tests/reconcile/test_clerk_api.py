"""The Clerk API client against the fake Clerk API over real HTTP: a rejected key stops at once,
retries on 5xx, 429, timeouts and bad JSON, and a client-side throttle under the limit."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.reconcile.clerk_api import ClerkAPI, ClerkAuthError
from tests.support import tables as t
from tests.support.clerk_instances import populate
from tests.support.fake_clerk import FakeClerk, Fault
from tests.support.reconciling import by_kind, run
from tests.support.replica_helpers import rows


async def test_rejected_key_stops_at_once(
    engine: AsyncEngine, rsettings: Settings, fake: FakeClerk
) -> None:
    bad = rsettings.updated(clerk_secret_key=SecretStr("sk_test_wrong"))
    api = ClerkAPI(bad, backoff_max_seconds=0.05)
    try:
        with pytest.raises(ClerkAuthError, match="CLERK_SECRET_KEY"):
            await run(engine, api, bad)
    finally:
        await api.close()
    assert len(fake.log) == 1


async def test_retries_5xx_429_timeouts_and_bad_json(
    engine: AsyncEngine, rsettings: Settings, fake: FakeClerk
) -> None:
    patient = rsettings.updated(reconcile_max_attempts=5)
    api = ClerkAPI(patient, backoff_max_seconds=0.05)
    fake.faults.extend(
        [
            Fault("status", status=502),
            Fault("rate_limited", retry_after=1),
            Fault("slow", seconds=3),  # past the client's 2 s timeout
            Fault("bad_json"),
        ]
    )
    try:
        report = await run(engine, api, patient, kinds=("organizations",))
    finally:
        await api.close()
    assert report.ok
    organizations = by_kind(report)["organizations"]
    assert organizations.throttled == 1 and api.stats.retries == 4
    assert len(await rows(engine, t.organizations)) == 12


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # a client test: one database
async def test_client_side_throttle_stays_under_the_limit(
    engine: AsyncEngine, rsettings: Settings, fake: FakeClerk
) -> None:
    # The fake enforces 30 requests per sliding 10 s; the client is configured for 30 too.
    fake.rate_limit_per_10s = 30
    populate(fake, users=1, orgs=31, members_per_org=0)
    throttled = rsettings.updated(reconcile_page_size=1, reconcile_max_requests_per_10s=30)
    api = ClerkAPI(throttled, backoff_max_seconds=0.05)
    try:
        report = await run(engine, api, throttled, kinds=("organizations",))
    finally:
        await api.close()
    assert report.ok and by_kind(report)["organizations"].created == 31
    times = [entry.at for entry in fake.log]
    assert len(times) == 34  # /instance, the total, 31 one-item pages and the empty last one
    assert all(entry.status == 200 for entry in fake.log)  # never rate limited
    busiest = max(sum(1 for u in times if s <= u < s + 10) for s in times)
    assert busiest <= 30
    assert times[-1] - times[0] >= 10  # 33 requests at 30 per 10 s cannot finish sooner


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # a client test: one database
async def test_a_429_waits_as_long_as_retry_after_says(
    engine: AsyncEngine, rsettings: Settings, fake: FakeClerk
) -> None:
    # No other fault, and a backoff of at most 0.05 s: only Retry-After can make the wait.
    api = ClerkAPI(rsettings, backoff_max_seconds=0.05)
    fake.faults.append(Fault("rate_limited", retry_after=2))
    try:
        report = await run(engine, api, rsettings, kinds=("organizations",))
    finally:
        await api.close()
    assert report.ok and by_kind(report)["organizations"].throttled == 1
    limited = next(n for n, entry in enumerate(fake.log) if entry.status == 429)
    retried = fake.log[limited + 1]
    assert retried.path == fake.log[limited].path
    assert 1.9 <= retried.at - fake.log[limited].at < 10
