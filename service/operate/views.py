"""Views over the replica, rebuilt by every migration: `<table>_live` for each table with a
tombstone (the rows apps usually want), and on PostgreSQL the tables of clerk_fdw (the Clerk
foreign data wrapper) in CLERK_FDW_SCHEMA, so that queries written for the wrapper are answered
from local, indexed tables instead of the API.

The views follow from the tables and the kinds' declarations alone, so they are dropped before
the migrations run (a view would block changing a column it reads) and created again once the
database is at head: never out of step with the tables or with CLERK_FDW_SCHEMA. On
PostgreSQL each carries a comment saying so, and the drop finds them by it, in whatever schema
an earlier CLERK_FDW_SCHEMA put them. An app's own view over one of them makes the drop fail
with PostgreSQL's error naming it: drop that view, migrate, create it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, Table, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from service.db.dialect import dialect_of
from service.db.errors import describe, sqlstate
from service.kinds.registry import KINDS, replica_tables
from service.logs import get_logger

log = get_logger(__name__)

MARK = "clerk-replica: rebuilt by every migration"
_INSUFFICIENT_PRIVILEGE = "42501"


def live_views() -> list[tuple[str, Table]]:
    """(view name, table) for every replica table with a tombstone."""
    return [(f"{t.name}_live", t) for t in replica_tables() if "deleted_at" in t.c]


def fdw_views() -> list[str]:
    """The names of the clerk_fdw views, in the registry's order."""
    return [kind.fdw.name for kind in KINDS if kind.fdw is not None]


_OURS = text(
    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_description d ON d.objoid = c.oid AND d.objsubid = 0 "
    "WHERE c.relkind = 'v' AND d.description = :mark"
)

_GRANTS = text(
    "SELECT format('GRANT %s ON %I.%I TO %I', privilege_type, table_schema, table_name, grantee) "
    "FROM information_schema.role_table_grants "
    "WHERE format('%I.%I', table_schema, table_name) = :view AND grantee <> current_user"
)


def drop(conn: Connection) -> list[tuple[str, str]]:
    """Drop every view `create` made (on PostgreSQL, wherever it is); returns the GRANTs they
    held (readonly-sql's) as (view, statement), for `create` to give back."""
    grants: list[tuple[str, str]] = []
    if dialect_of(conn).schemas:
        for (view,) in conn.execute(_OURS, {"mark": MARK}).all():
            held = conn.execute(_GRANTS, {"view": view}).scalars()
            grants += [(view, grant) for grant in held]
            conn.exec_driver_sql(f"DROP VIEW {view}")
    for name, _table in live_views():
        conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
    return grants


def create(conn: Connection, fdw_schema: str, grants: Sequence[tuple[str, str]] = ()) -> None:
    """Create the views (the tables they read must exist: the database is at head), with the
    `grants` `drop` found. PostgreSQL binds a view to the tables its name resolves to now, the
    replica's: the migration's search_path, with our own views dropped, leads nowhere else."""
    made: list[str] = []
    for name, table in live_views():
        conn.exec_driver_sql(f"CREATE VIEW {name} AS {_sql(conn, select(table), table)}")
        made.append(name)
    if not dialect_of(conn).schemas:
        return  # SQLite has no schemas (nor comments), and clerk_fdw is PostgreSQL's
    if fdw_schema:
        made += _fdw_views(conn, fdw_schema)
    for view in made:
        conn.exec_driver_sql(f"COMMENT ON VIEW {view} IS '{MARK}'")
    for view, grant in grants:  # those of views that are back (not those CLERK_FDW_SCHEMA ended)
        if conn.execute(text("SELECT to_regclass(:v)"), {"v": view}).scalar() is not None:
            conn.exec_driver_sql(grant)


def ensure_schema(conn: Connection, name: str) -> None:
    """Create schema `name` unless it exists (creating needs the database's CREATE privilege,
    which a role that owns only its schema lacks: checking first spares it that)."""
    found = conn.execute(text("SELECT to_regnamespace(:s) IS NOT NULL"), {"s": name}).scalar()
    if not found:
        conn.exec_driver_sql(f"CREATE SCHEMA {name}")


def _fdw_views(conn: Connection, fdw_schema: str) -> list[str]:
    """Create the clerk_fdw views; none, with a warning, where this role may not create them
    (they are a convenience: a migration must not fail for them)."""
    made: list[str] = []
    try:
        with conn.begin_nested():
            ensure_schema(conn, fdw_schema)
            for kind in KINDS:
                if kind.fdw is not None:
                    query = select(*kind.fdw.columns(kind.table))
                    view = f"{fdw_schema}.{kind.fdw.name}"
                    body = _sql(conn, query, kind.table)
                    conn.exec_driver_sql(f"CREATE VIEW {view} AS {body}")
                    made.append(view)
    except DBAPIError as exc:
        if sqlstate(exc) != _INSUFFICIENT_PRIVILEGE:
            raise
        log.warning("migrate.clerk_fdw_views_skipped", schema=fdw_schema, error=describe(exc))
        return []
    return made


def _sql(conn: Connection, query: Select[Any], table: Table) -> str:
    """`query` over the live rows of `table`, as literal SQL for a view's body."""
    live = query.where(table.c.deleted_at.is_(None))
    return str(live.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
