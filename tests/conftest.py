"""Real servers for the suite: PostgreSQL and Redis from TEST_POSTGRES_URL / TEST_REDIS_URL when
set, otherwise throwaway ones started here. SQLite databases come from a migrated template."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.db.engine import create_engine
from service.db.types import metadata
from service.operate.migrate import upgrade
from tests import servers
from tests.signing import PREVIOUS_SECRET, SECRET

TEST_DB = f"clerk_replica_test_{os.getpid()}"

# CI runs the same examples every time (a red run must be reproducible, not a dice roll);
# locally Hypothesis explores new ones. HYPOTHESIS_PROFILE overrides either way.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.register_profile("explore", print_blob=True)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "explore")
)


def _libpq_url(url: str) -> str:
    """asyncpg wants postgresql://; accept any spelling the service accepts."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("TEST_POSTGRES_URL")
    if given:
        yield _libpq_url(given)
        return
    with servers.embedded_postgres(tmp_path_factory.mktemp("pg")) as url:
        yield url


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def pg_admin(admin_url: str, sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@contextmanager
def fresh_pg_database(admin_url: str, name: str) -> Iterator[str]:
    """An empty database of our own on the server; dropped afterwards."""
    pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}"')
    pg_admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(admin_url, name)
    finally:
        pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
    with servers.redis_server(tmp_path_factory.mktemp("redis")) as (url, _proc):
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "replica.db"
    upgrade(f"sqlite:///{path}")
    return path


def _truncate_pg(url: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            names = ", ".join(t.name for t in metadata.sorted_tables)
            await conn.execute(f"TRUNCATE {names}")
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture
def pg_db_url(pg_url: str) -> str:
    _truncate_pg(pg_url)
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


def make_settings(database_url: str, redis_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "clerk_webhook_signing_secret": SECRET,
        "clerk_webhook_signing_secret_previous": PREVIOUS_SECRET,
        "queue_prefix": f"test-{uuid4().hex[:12]}",
        "sweep_grace_seconds": 0,
        "log_format": "console",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


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


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Any]:
    """A whole deployment of real processes (tests/fault_stack.py), torn down afterwards."""
    from tests.fault_stack import Stack

    running = Stack(tmp_path).up()
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
    from tests.fake_clerk import FakeClerk, serve

    assert isinstance(fake, FakeClerk)
    with serve(fake) as url:
        yield url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Figures measured by the fault, soak and memory tests, so CI output carries them."""
    from tests.fault_stack import REPORT

    if REPORT:
        terminalreporter.section("measured")
        for line in REPORT:
            terminalreporter.write_line(line)
