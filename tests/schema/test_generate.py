"""Every table and column a migrated replica holds (both databases) appears in every generated
schema: a table or column the registry does not describe, or a generator drops, fails here.
The replica's tables and views are those named clerk_*, except the service's own clerk_replica_*."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection

from service.db.engine import create_engine
from service.schema.generate import generate
from service.schema.target import Format, Target
from tests.support.settings import make_settings

Columns = dict[str, set[str]]


async def database_columns(url: str, redis_url: str) -> Columns:
    """The replica's tables and views in the database, with their columns."""

    def read(conn: Connection) -> Columns:
        found = inspect(conn)
        names = [*found.get_table_names(), *found.get_view_names()]
        return {
            name: {c["name"] for c in found.get_columns(name)}
            for name in names
            if name.startswith("clerk_") and not name.startswith("clerk_replica_")
        }

    engine = create_engine(make_settings(url, redis_url))
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(read)
    finally:
        await engine.dispose()


_DRIZZLE_TABLE = re.compile(
    r"export const \w+ = (?:pgTable|pgView|sqliteTable|sqliteView)\(\"(\w+)\", \{\n(.*?)\n\}", re.S
)


def drizzle_columns(source: str) -> Columns:
    return {
        name: set(re.findall(r'^\s+\w+: \w+\("(\w+)"', body, re.M))
        for name, body in _DRIZZLE_TABLE.findall(source)
    }


_PRISMA_BLOCK = re.compile(r"^(?:model|view) \w+ \{\n(.*?)^\}", re.S | re.M)


def prisma_columns(source: str) -> Columns:
    found: Columns = {}
    for body in _PRISMA_BLOCK.findall(source):
        name = re.search(r'@@map\("(\w+)"\)', body)
        assert name is not None, body
        columns = set()
        for line in body.splitlines():
            scalar = re.match(
                r"\s+(\w+)\s+(?:String|Boolean|Int|BigInt|DateTime|Json)\??\s*(.*)", line
            )
            if scalar:
                mapped = re.search(r'@map\("(\w+)"\)', scalar.group(2))
                columns.add(mapped.group(1) if mapped else scalar.group(1))
        found[name.group(1)] = columns
    return found


def sqlalchemy_columns(source: str, tmp_path: Path) -> Columns:
    path = tmp_path / "clerk_models_coverage.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("clerk_models_coverage", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # SQLAlchemy resolves annotations through it
    try:
        spec.loader.exec_module(module)
        found: Columns = {}
        for base in (module.Base, module.LiveViews):
            metadata: MetaData = base.metadata
            found |= {t.name: {c.name for c in t.c} for t in metadata.tables.values()}
        return found
    finally:
        del sys.modules[spec.name]


def missing(database: Columns, generated: Columns) -> list[str]:
    """What the database has that the generated schema lacks, as `table` or `table.column`."""
    gaps = []
    for table, columns in sorted(database.items()):
        if table not in generated:
            gaps.append(table)
            continue
        gaps += [f"{table}.{c}" for c in sorted(columns - generated[table])]
    return gaps


def _readers(tmp_path: Path) -> dict[Format, Callable[[str], Columns]]:
    return {
        Format.DRIZZLE: drizzle_columns,
        Format.PRISMA: prisma_columns,
        Format.SQLALCHEMY: lambda source: sqlalchemy_columns(source, tmp_path),
    }


async def test_every_replica_table_and_column_is_in_every_schema(
    db_url: str, redis_url: str, tmp_path: Path
) -> None:
    target = Target.POSTGRESQL if db_url.startswith("postgresql") else Target.SQLITE
    database = await database_columns(db_url, redis_url)
    assert "clerk_organization_memberships_live" in database  # the views are read too
    for format_, read in _readers(tmp_path).items():
        generated = read(generate(format_, target))
        assert missing(database, generated) == [], format_


async def test_a_column_the_schemas_lack_is_found(
    sqlite_db_url: str, redis_url: str, tmp_path: Path
) -> None:
    engine = create_engine(make_settings(sqlite_db_url, redis_url))
    async with engine.begin() as conn:
        await conn.exec_driver_sql("ALTER TABLE clerk_users ADD COLUMN nickname TEXT")
        await conn.exec_driver_sql("CREATE TABLE clerk_badges (id TEXT PRIMARY KEY)")
    await engine.dispose()
    database = await database_columns(sqlite_db_url, redis_url)
    for format_, read in _readers(tmp_path).items():
        generated = read(generate(format_, Target.SQLITE))
        assert missing(database, generated) == ["clerk_badges", "clerk_users.nickname"], format_


@pytest.mark.parametrize("format_", list(Format))
def test_the_command_prints_each_format(format_: Format) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service", "schema", "--format", format_, "--dialect", "sqlite"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "clerk_organization_memberships" in done.stdout
    assert (
        "for the replica at migration" in done.stdout.splitlines()[0] + done.stdout.splitlines()[1]
    )


def test_an_unknown_format_or_dialect_is_refused() -> None:
    for args in (["--format", "typeorm"], ["--format", "prisma", "--dialect", "mysql"]):
        done = subprocess.run(
            [sys.executable, "-m", "service", "schema", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        assert "Invalid value" in done.stderr and done.stdout == ""
