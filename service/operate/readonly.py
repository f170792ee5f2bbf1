"""Least privilege for app readers: SQL granting SELECT on the replica tables and nothing else
(not the inbox, which holds raw payloads, nor the reconcile bookkeeping), the change feed and
the instances table (which configured name each `instance_id` is)."""

from __future__ import annotations

import re

from service.db.postgresql import RESERVED_WORDS
from service.feed.changes import changes
from service.inbox.instances import instances
from service.kinds.registry import replica_tables
from service.operate.views import fdw_views, live_views

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Role names PostgreSQL gives a meaning of its own (GRANT ... TO public grants every role).
_SPECIAL_ROLES = {"public", "none", "current_user", "current_role", "session_user", "user"}
REPLICA_TABLES = [table.name for table in replica_tables()]
LIVE_VIEWS = [name for name, _table in live_views()]


def reserved_role_name(name: str) -> bool:
    """A role name PostgreSQL reserves: a special role, a system role (`pg_*`) or a keyword."""
    lowered = name.lower()
    return lowered in _SPECIAL_ROLES or lowered.startswith("pg_") or lowered in RESERVED_WORDS


def readonly_statements(
    role: str, *, schema: str = "public", fdw_schema: str = "", create: bool = True
) -> list[str]:
    """The statements, to run in one transaction. Rerun after migrations that add tables.
    The `_live` views come with the tables, and the clerk_fdw views with `fdw_schema`.

    Names are checked whole: a plain lower-case identifier, and for the role not one that
    PostgreSQL reserves (`public`, `current_user`, `pg_*`, keywords), which would grant every
    role or fail half-way.
    """
    for name in (role, schema, *([fdw_schema] if fdw_schema else [])):
        if not _IDENTIFIER.fullmatch(name):
            raise ValueError(f"{name!r} is not a plain lower-case SQL identifier")
    if reserved_role_name(role):
        raise ValueError(f"{role!r} is a name PostgreSQL reserves: choose another role name")
    # The change feed too, and which configured name each instance_id is.
    readable = (*REPLICA_TABLES, *LIVE_VIEWS, changes.name, instances.name)
    tables = ", ".join(f"{schema}.{name}" for name in readable)
    statements = []
    if create:
        statements.append(
            "DO $$ BEGIN "
            f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') "
            f"THEN CREATE ROLE {role} NOLOGIN; END IF; END $$;"
        )
    statements += [
        f"GRANT USAGE ON SCHEMA {schema} TO {role};",
        f"GRANT SELECT ON {tables} TO {role};",
    ]
    if fdw_schema:
        views = ", ".join(f"{fdw_schema}.{name}" for name in fdw_views())
        statements += [
            f"GRANT USAGE ON SCHEMA {fdw_schema} TO {role};",
            f"GRANT SELECT ON {views} TO {role};",
        ]
    return statements


def readonly_sql(
    role: str, *, schema: str = "public", fdw_schema: str = "", create: bool = True
) -> str:
    """A psql script of `readonly_statements`: it stops at the first error, and runs in one
    transaction, so a failed CREATE ROLE leaves no GRANT behind."""
    lines = [
        f"-- Read-only access to the Clerk replica for {role}.",
        f"-- Give it a login with: ALTER ROLE {role} LOGIN PASSWORD '...';",
        "\\set ON_ERROR_STOP on",
        "BEGIN;",
        *readonly_statements(role, schema=schema, fdw_schema=fdw_schema, create=create),
        "COMMIT;",
    ]
    return "\n".join(lines) + "\n"
