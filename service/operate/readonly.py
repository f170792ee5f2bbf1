"""Least privilege for app readers: SQL granting SELECT on the replica tables and nothing else
(not the inbox, which holds raw payloads, nor the reconcile bookkeeping)."""

from __future__ import annotations

import re

from service.kinds.registry import replica_tables

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
REPLICA_TABLES = [table.name for table in replica_tables()]


def readonly_sql(role: str, *, schema: str = "public", create: bool = True) -> str:
    """PostgreSQL statements for a read-only role. Rerun after migrations that add tables."""
    for name in (role, schema):
        if not _IDENTIFIER.match(name):
            raise ValueError(f"{name!r} is not a plain lower-case SQL identifier")
    tables = ", ".join(f"{schema}.{name}" for name in REPLICA_TABLES)
    lines = [
        f"-- Read-only access to the Clerk replica for {role}.",
        f"-- Give it a login with: ALTER ROLE {role} LOGIN PASSWORD '...';",
    ]
    if create:
        lines.append(
            "DO $$ BEGIN "
            f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') "
            f"THEN CREATE ROLE {role} NOLOGIN; END IF; END $$;"
        )
    lines += [
        f"GRANT USAGE ON SCHEMA {schema} TO {role};",
        f"GRANT SELECT ON {tables} TO {role};",
    ]
    return "\n".join(lines) + "\n"
