"""Views over the replica, rebuilt by every migration: `<table>_live` for each table with a
tombstone (the rows apps usually want), and on PostgreSQL the tables of clerk_fdw (the Clerk
foreign data wrapper) in CLERK_FDW_SCHEMA, so that queries written for the wrapper are answered
from local, indexed tables instead of the API.

The views follow from the tables and the kinds' declarations alone, so they are dropped before
the migrations run (a view would block changing a column it reads) and created again once the
database is at head: never out of step with the tables or with CLERK_FDW_SCHEMA. On
PostgreSQL each carries a comment naming its install's REPLICA_SCHEMA, and the drop finds this
install's by it (never another install's in the same database), in whatever schema an earlier
CLERK_FDW_SCHEMA put them; their grants, to any role or PUBLIC, are given back.
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
_DUPLICATE_TABLE = "42P07"


def live_views() -> list[tuple[str, Table]]:
    """(view name, table) for every replica table with a tombstone."""
    return [(f"{t.name}_live", t) for t in replica_tables() if "deleted_at" in t.c]


def fdw_views() -> list[str]:
    """The names of the clerk_fdw views, in the registry's order."""
    return [kind.fdw.name for kind in KINDS if kind.fdw is not None]


_MARKED = text(
    "SELECT format('%I.%I', n.nspname, c.relname), n.nspname, d.description FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_description d ON d.objoid = c.oid AND d.objsubid = 0 "
    "WHERE c.relkind = 'v' AND starts_with(d.description, :mark)"
)

# Every privilege on the view but its owner's, to PUBLIC (grantee 0) or to any role, quoted.
_GRANTS = text(
    "SELECT format('GRANT %s ON %s TO %s%s', a.privilege_type, CAST(:view AS text), "
    "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, "
    "CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) "
    "FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a "
    "WHERE c.oid = CAST(:view AS regclass) AND a.grantee <> c.relowner"
)


def mark(replica_schema: str) -> str:
    """The comment on the views of the install whose tables are in `replica_schema`."""
    return f"{MARK} (REPLICA_SCHEMA {replica_schema})"


def drop(conn: Connection, replica_schema: str, fdw_schema: str) -> list[tuple[str, str]]:
    """Drop every view `create` made for this install (on PostgreSQL, wherever it is); returns
    the GRANTs they held as (view, statement), for `create` to give back. Views marked before
    marks named their install are this install's in its own two schemas only."""
    grants: list[tuple[str, str]] = []
    if dialect_of(conn).schemas:
        own = mark(replica_schema)
        for view, schema, description in conn.execute(_MARKED, {"mark": MARK}).all():
            unnamed = description == MARK and schema in (replica_schema, fdw_schema)
            if description != own and not unnamed:
                continue  # another install's
            held = conn.execute(_GRANTS, {"view": view}).scalars()
            grants += [(view, grant) for grant in held]
            conn.exec_driver_sql(f"DROP VIEW {view}")
    for name, _table in live_views():
        conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
    return grants


def create(
    conn: Connection,
    replica_schema: str,
    fdw_schema: str,
    grants: Sequence[tuple[str, str]] = (),
) -> None:
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
        conn.exec_driver_sql(f"COMMENT ON VIEW {view} IS '{mark(replica_schema)}'")
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
        if sqlstate(exc) not in (_INSUFFICIENT_PRIVILEGE, _DUPLICATE_TABLE):
            raise
        # A duplicate: another install's views hold the schema; it keeps them.
        log.warning(
            "migrate.clerk_fdw_views_skipped",
            schema=fdw_schema,
            error=describe(exc),
            hint="give each install in this database its own CLERK_FDW_SCHEMA",
        )
        return []
    return made


def _sql(conn: Connection, query: Select[Any], table: Table) -> str:
    """`query` over the live rows of `table`, as literal SQL for a view's body."""
    live = query.where(table.c.deleted_at.is_(None))
    return str(live.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
