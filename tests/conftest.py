"""Real servers for the suite: PostgreSQL and Redis from TEST_POSTGRES_URL / TEST_REDIS_URL when
set, otherwise throwaway ones started here. SQLite databases come from a migrated template."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.db.engine import create_engine
from service.dev.processes import embedded_postgres, embedded_redis
from service.operate.migrate import upgrade
from tests.support.databases import fresh_pg_database, libpq_url, truncate_pg
from tests.support.settings import make_settings

TEST_DB = f"clerk_replica_test_{os.getpid()}"

# CI runs the same examples every time (a red run must be reproducible, not a dice roll);
# locally Hypothesis explores new ones. HYPOTHESIS_PROFILE overrides either way.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.register_profile("explore", print_blob=True)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "explore")
)


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("TEST_POSTGRES_URL")
    if given:
        yield libpq_url(given)
        return
    with embedded_postgres(tmp_path_factory.mktemp("pg")) as url:
        yield url


@pytest.fixture(scope="session")
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A database of this run's own, migrated once; dropped at the end."""
    with fresh_pg_database(pg_admin_url, TEST_DB) as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        yield given
        return
    with embedded_redis(tmp_path_factory.mktemp("redis")) as (url, _proc):
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "replica.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def pg_db_url(pg_url: str) -> str:
    truncate_pg(pg_url)
    return pg_url


@pytest.fixture
def sqlite_db_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "replica.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on PostgreSQL and once on SQLite."""
    name = "pg_db_url" if request.param == "postgresql" else "sqlite_db_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def settings(db_url: str, redis_url: str) -> Settings:
    return make_settings(db_url, redis_url)


@pytest.fixture
async def client_for() -> AsyncIterator[Any]:
    """Build HTTP clients for apps made from given settings, their lifespans running."""
    import httpx

    from service.web.app import create_app

    opened: list[tuple[Any, httpx.AsyncClient]] = []

    async def make(settings: Settings) -> httpx.AsyncClient:
        app = create_app(settings)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        opened.append((lifespan, client))
        return client

    yield make
    for lifespan, client in reversed(opened):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture(scope="session")
def pg_cluster_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated PostgreSQL data directory, its server stopped; each stack starts a copy."""
    from tests.support.fault_stack import migrated_cluster

    return migrated_cluster(tmp_path_factory.mktemp("pg-cluster-template"))


@pytest.fixture
def stack(tmp_path: Path, pg_cluster_template: Path) -> Iterator[Any]:
    """A whole deployment of real processes (tests/support/fault_stack.py), torn down afterwards."""
    from tests.support.fault_stack import Stack

    running = Stack(tmp_path, template=pg_cluster_template).up()
    try:
        yield running
    finally:
        running.down()


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def pg_engine(pg_db_url: str, redis_url: str) -> AsyncIterator[AsyncEngine]:
    """PostgreSQL only, for behaviour SQLite does not have (row locks, sessions)."""
    engine = create_engine(make_settings(pg_db_url, redis_url))
    yield engine
    await engine.dispose()


@pytest.fixture
def clerk_url(fake: object) -> Iterator[str]:
    """The module's `fake` Clerk API, served over real HTTP on loopback."""
    from tests.support.fake_clerk import FakeClerk, serve

    assert isinstance(fake, FakeClerk)
    with serve(fake) as url:
        yield url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Figures measured by the fault, soak and memory tests, so CI output carries them."""
    from tests.support.measured import REPORT

    if REPORT:
        terminalreporter.section("measured")
        for line in REPORT:
            terminalreporter.write_line(line)
