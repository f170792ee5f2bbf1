"""A fake Clerk instance of 120 users and 12 organizations, and settings and an API client
pointed at it, for the reconcile tests (a module may define its own `fake`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from service.config import Settings
from service.reconcile.clerk_api import ClerkAPI
from tests.support.clerk_instances import populate
from tests.support.fake_clerk import KEY, FakeClerk
from tests.support.settings import make_settings


@pytest.fixture
def fake() -> FakeClerk:
    fake = FakeClerk()
    populate(fake, users=120, orgs=12, members_per_org=5)
    return fake


@pytest.fixture
def rsettings(db_url: str, redis_url: str, clerk_url: str) -> Settings:
    return make_settings(
        db_url,
        redis_url,
        clerk_secret_key="sk_test_fake_replica_key",
        clerk_api_url=clerk_url,
        reconcile_page_size=50,
        reconcile_max_requests_per_10s=100_000,
        # One walk per list: these tests script what a single walk asks of Clerk (the
        # segments walked side by side are tests/reconcile/test_segments.py's).
        reconcile_concurrency=1,
        reconcile_max_attempts=4,
        reconcile_timeout_seconds=2,
    )


@pytest.fixture
async def api(rsettings: Settings) -> AsyncIterator[ClerkAPI]:
    api = ClerkAPI(rsettings, backoff_max_seconds=0.05)
    yield api
    await api.close()


@pytest.fixture
async def quick_api(clerk_url: str, sqlite_db_url: str, redis_url: str) -> AsyncIterator[ClerkAPI]:
    """A client of the module's fake that retries little and waits less (no database used)."""
    settings = make_settings(
        sqlite_db_url,
        redis_url,
        clerk_secret_key=KEY,
        clerk_api_url=clerk_url,
        reconcile_max_requests_per_10s=100_000,
        reconcile_max_attempts=2,
    )
    api = ClerkAPI(settings, backoff_max_seconds=0.01)
    yield api
    await api.close()
