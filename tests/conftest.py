"""Real servers for the suite: PostgreSQL and Redis from TEST_POSTGRES_URL / TEST_REDIS_URL when
set, otherwise throwaway ones started here. SQLite databases come from a migrated template.

Under pytest-xdist (scripts/test runs three workers) only the first worker uses the given
servers; every other one starts its own, so no two workers share a database, a Redis or a
role name."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.db.engine import create_engine
from service.dev.processes import embedded_redis
from service.operate.migrate import upgrade
from tests.support.databases import fresh_pg_database, libpq_url, truncate_pg
from tests.support.embedded_postgres import embedded_postgres
from tests.support.settings import make_settings

TEST_DB = f"clerk_replica_test_{os.getpid()}"
# "gw0", "gw1", ... in a pytest-xdist worker; unset in a run without workers.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")

# CI runs the same examples every time (a red run must be reproducible, not a dice roll);
# locally Hypothesis explores new ones. HYPOTHESIS_PROFILE overrides either way.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.register_profile("explore", print_blob=True)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "explore")
)


# The longest tests, longest first (by a profile of the whole suite). With workers, they start
# first: scripts/test hands out one test at a time, so the others fill in around them and no
# worker is left running a long one alone at the end. Without workers the order is pytest's.
LONGEST_FIRST = (
    "tests/system/test_soak.py::",
    "tests/test_deploy.py::test_image_commands_work_from_a_plain_venv",
    "tests/system/test_convergence.py::test_any_delivery_order_converges_to_clerk[postgresql]",
    "tests/system/test_hostile.py::test_no_memory_growth_across_thousands_of_hostile_requests",
    "tests/system/test_reconcile_processes.py::",
    "tests/system/test_clerk_spec.py::test_reconcile_takes_every_object_the_backend_spec_allows",
    "tests/system/test_convergence.py::",
    "tests/system/test_faults.py::",
    "tests/dev/test_stack.py::",
    "tests/system/test_secrets.py::",
    "tests/reconcile/test_clerk_api.py::test_client_side_throttle_stays_under_the_limit",
    "tests/system/test_hostile.py::",
    "tests/schema/",
    "tests/web/console/test_browser.py::",
    "tests/test_cli_operate.py::",
    "tests/reconcile/test_incremental.py::",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return

    def rank(item: pytest.Item) -> int:
        found = (i for i, prefix in enumerate(LONGEST_FIRST) if item.nodeid.startswith(prefix))
        return next(found, len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: pytest's order within each rank


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("TEST_POSTGRES_URL") if WORKER == "gw0" else None
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
    given = os.environ.get("TEST_REDIS_URL") if WORKER == "gw0" else None
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


# The figures of every test, gathered from the reports: with pytest-xdist the tests run in
# worker processes and only their reports reach the process that prints the summary.
MEASURED: list[str] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport() -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """What the test measured (tests/support/measured.py) rides on its report."""
    from tests.support.measured import REPORT

    report = yield
    report.user_properties.extend(("measured", line) for line in REPORT)
    REPORT.clear()
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    MEASURED.extend(str(value) for key, value in report.user_properties if key == "measured")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Figures measured by the fault, soak and memory tests, so CI output carries them."""
    if MEASURED:
        terminalreporter.section("measured")
        for line in MEASURED:
            terminalreporter.write_line(line)
