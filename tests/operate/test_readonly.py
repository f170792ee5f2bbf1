"""`clerk-replica readonly-sql` on a real PostgreSQL: the role it grants selects the replica
tables and nothing else."""

from __future__ import annotations

import asyncio
import re
import subprocess

import asyncpg
import pytest

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
