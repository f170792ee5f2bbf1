"""`clerk-replica readonly-sql` on a real PostgreSQL: the role it grants selects the replica
tables and nothing else."""

from __future__ import annotations

import asyncio
import re
import subprocess

import asyncpg
import pytest

from service.operate.readonly import readonly_sql, readonly_statements
from tests.support.commands import CLI, env


def test_readonly_role_selects_replica_tables_and_nothing_else(pg_url: str) -> None:
    sql = subprocess.run(
        [CLI, "readonly-sql", "clerk_reader_test"], env=env(), capture_output=True, text=True
    )
    # The tables come in the registry's order (parents first): clerk_users is one of them.
    assert sql.returncode == 0
    assert re.search(r"GRANT SELECT ON [^;]*\bpublic\.clerk_users\b[,;]", sql.stdout)
    applied = subprocess.run(
        [CLI, "readonly-sql", "clerk_reader_test", "--apply"],
        env=env(database_url=pg_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert applied.returncode == 0, applied.stderr

    async def check() -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute("SET ROLE clerk_reader_test")
            await conn.fetch(
                "SELECT u.id FROM clerk_users u "
                "JOIN clerk_organization_memberships m ON m.user_id = u.id"
            )
            await conn.fetch("SELECT id FROM clerk_users_live")  # the views too
            await conn.fetch("SELECT user_id FROM clerk_fdw.clerk_users")
            await conn.fetch("SELECT name, instance_id FROM clerk_replica_instances")
            for forbidden_sql in (
                "SELECT * FROM clerk_replica_inbox",
                "SELECT * FROM clerk_replica_reconcile_runs",
                "INSERT INTO clerk_users (id) VALUES ('x')",
                "UPDATE clerk_users SET first_name = 'x'",
                "DELETE FROM clerk_users",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(forbidden_sql)
        finally:
            await conn.execute("RESET ROLE")
            await conn.close()

    asyncio.run(check())
    refused = subprocess.run(
        [CLI, "readonly-sql", "Robert'); DROP TABLE--"], env=env(), capture_output=True, text=True
    )
    assert refused.returncode == 2 and "not a plain lower-case SQL identifier" in refused.stderr


@pytest.mark.parametrize(
    "role", ["public", "current_user", "session_user", "pg_monitor", "select", "user", "none"]
)
def test_reserved_role_names_are_refused(role: str) -> None:
    with pytest.raises(ValueError, match="reserves"):
        readonly_sql(role)


@pytest.mark.parametrize("role", ["reader\n", "reader\nGRANT", " reader", "Reader", "a-b"])
def test_the_whole_name_must_be_a_plain_identifier(role: str) -> None:
    with pytest.raises(ValueError, match="plain lower-case SQL identifier"):
        readonly_sql(role)


def test_the_script_stops_at_the_first_error_inside_one_transaction() -> None:
    lines = readonly_sql("app_reader").splitlines()
    statements = [line for line in lines if line and not line.startswith("--")]
    assert statements[:2] == ["\\set ON_ERROR_STOP on", "BEGIN;"]
    assert statements[-1] == "COMMIT;"
    assert statements[2:-1] == readonly_statements("app_reader")


def test_apply_is_one_transaction_a_failed_grant_leaves_no_role(pg_url: str) -> None:
    # A schema that does not exist: CREATE ROLE succeeds, then GRANT USAGE fails.
    applied = subprocess.run(
        [CLI, "readonly-sql", "clerk_half_granted", "--schema", "no_such_schema", "--apply"],
        env=env(database_url=pg_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert applied.returncode == 1 and "no_such_schema" in applied.stderr

    async def role_exists() -> bool:
        conn = await asyncpg.connect(pg_url)
        try:
            found = await conn.fetchval(
                "SELECT count(*) FROM pg_roles WHERE rolname = 'clerk_half_granted'"
            )
            return bool(found)
        finally:
            await conn.close()

    assert asyncio.run(role_exists()) is False


def test_the_schema_is_replica_schema_unless_given() -> None:
    placed = subprocess.run(
        [CLI, "readonly-sql", "app_reader"],
        env=env(replica_schema="clerk_app", clerk_fdw_schema=""),
        capture_output=True,
        text=True,
    )
    assert placed.returncode == 0, placed.stderr
    assert "GRANT USAGE ON SCHEMA clerk_app TO app_reader;" in placed.stdout
    assert "clerk_app.clerk_users_live" in placed.stdout
    assert "clerk_fdw" not in placed.stdout  # none: CLERK_FDW_SCHEMA is empty
    given = subprocess.run(
        [CLI, "readonly-sql", "app_reader", "--schema", "elsewhere"],
        env=env(replica_schema="clerk_app"),
        capture_output=True,
        text=True,
    )
    assert "GRANT USAGE ON SCHEMA elsewhere TO app_reader;" in given.stdout
    assert "GRANT USAGE ON SCHEMA clerk_fdw TO app_reader;" in given.stdout
