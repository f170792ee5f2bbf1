"""Engines: the URLs teams paste map to the async drivers; SQLite is tuned for durability."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from service.config import ConfigError
from service.db.engine import async_url, create_engine, sqlite_file
from tests.support.settings import make_settings


@pytest.mark.parametrize(
    ("raw", "driver"),
    [
        ("postgres://u:p@db.example:5432/app", "postgresql+asyncpg"),
        ("postgresql://u:p@db.example/app", "postgresql+asyncpg"),
        ("postgresql+psycopg://u@db.example/app", "postgresql+asyncpg"),
        ("sqlite:///replica.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///replica.db", "sqlite+aiosqlite"),
    ],
)
def test_async_url_picks_the_async_driver(raw: str, driver: str) -> None:
    url = async_url(raw)
    assert url.drivername == driver
    assert url.database in {"app", "replica.db"}


def test_postgres_scheme_keeps_credentials_host_and_port() -> None:
    url = async_url("postgres://u:p@db.example:6543/app")
    assert (url.username, url.password, url.host, url.port) == ("u", "p", "db.example", 6543)


def test_sslmode_becomes_ssl_and_other_parameters_stay() -> None:
    url = async_url("postgres://u@db.example/app?sslmode=require&application_name=replica")
    assert dict(url.query) == {"ssl": "require", "application_name": "replica"}


@pytest.mark.parametrize("raw", ["mysql://u@db.example/app", "redis://localhost:6379/0"])
def test_an_unsupported_scheme_is_a_config_error_naming_it(raw: str) -> None:
    with pytest.raises(ConfigError, match="not supported") as caught:
        async_url(raw)
    assert raw.split(":")[0] in str(caught.value)


def test_a_url_that_does_not_parse_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a valid database URL"):
        async_url("not a url at all")


async def test_sqlite_file_engine_uses_wal_full_sync_and_a_busy_timeout(
    tmp_path: Path, redis_url: str
) -> None:
    path = tmp_path / "nested" / "dir" / "replica.db"
    engine = create_engine(make_settings(f"sqlite:///{path}", redis_url))
    try:
        async with engine.connect() as conn:
            mode = await conn.scalar(text("PRAGMA journal_mode"))
            synchronous = await conn.scalar(text("PRAGMA synchronous"))
            busy = await conn.scalar(text("PRAGMA busy_timeout"))
    finally:
        await engine.dispose()
    assert (mode, synchronous, busy) == ("wal", 2, 10000)  # 2 is FULL
    assert path.exists()


def test_replica_schema_holds_every_table_and_the_service_works_there(
    pg_admin_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REPLICA_SCHEMA: migrations create the schema and put every table there (alembic's too),
    nothing in public; events apply into it, and the views read it."""
    from service.config import get_settings
    from service.db.types import metadata
    from service.operate.migrate import upgrade
    from tests.support import clerk_payloads as cp
    from tests.support.databases import fresh_pg_database
    from tests.support.replica_helpers import deliver

    async def tables_by_schema(url: str) -> dict[str, set[str]]:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_type = 'BASE TABLE' AND table_schema IN ('public', 'clerk_app')"
            )
        finally:
            await conn.close()
        found: dict[str, set[str]] = {}
        for row in rows:
            found.setdefault(row["table_schema"], set()).add(row["table_name"])
        return found

    async def apply_and_read(url: str) -> list[Any]:
        engine = create_engine(make_settings(url, redis_url, replica_schema="clerk_app"))
        try:
            await deliver(engine, cp.envelope("user.created", cp.user("user_in_schema")))
        finally:
            await engine.dispose()
        conn = await asyncpg.connect(url)
        try:
            return [
                await conn.fetchval("SELECT id FROM clerk_app.clerk_users"),
                await conn.fetchval("SELECT id FROM clerk_app.clerk_users_live"),
                await conn.fetchval("SELECT user_id FROM clerk_fdw.clerk_users"),
                await conn.fetchval("SELECT count(*) FROM clerk_app.clerk_replica_inbox"),
            ]
        finally:
            await conn.close()

    monkeypatch.setenv("REPLICA_SCHEMA", "clerk_app")
    get_settings.cache_clear()
    try:
        with fresh_pg_database(pg_admin_url, "clerk_replica_schema_test") as url:
            upgrade(url)
            found = asyncio.run(tables_by_schema(url))
            assert found.get("public", set()) == set()
            assert found["clerk_app"] == {t.name for t in metadata.sorted_tables} | {
                "alembic_version"
            }
            upgrade(url)  # again: at head, nothing to do, views rebuilt
            assert asyncio.run(apply_and_read(url)) == [
                "user_in_schema",
                "user_in_schema",
                "user_in_schema",
                1,
            ]
    finally:
        get_settings.cache_clear()


def test_sqlite_file_names_the_file_of_a_sqlite_url_only() -> None:
    assert sqlite_file("sqlite:///./clerk-replica.db") == Path("clerk-replica.db")
    assert sqlite_file("sqlite+aiosqlite:////var/lib/r.db") == Path("/var/lib/r.db")
    assert sqlite_file("sqlite://") is None
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgres://app@db/app") is None
