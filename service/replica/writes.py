"""Order-safe, set-based writes shared by webhooks and reconcile.

Rules (Clerk delivers late, twice and out of order):
- a snapshot applies only if its `updated_at` is >= the stored one (ties: the later arrival wins);
- a tombstone (`deleted_at`) is lifted only by a snapshot of an object created after it;
- a user's identifiers are exactly those of the newest applied snapshot;
- deleting a user or organization ends its children, and children that arrive later are stored
  already ended;
- at most one live membership per (organization, user): the newest by (created_at, id) wins.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import (
    Table,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    delete,
    literal,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from service.apply.rows import Row, UserRows
from service.replica import tables as t

# Keeps every statement under the bind-parameter limits of asyncpg and SQLite.
_CHUNK = 500


def _insert(dialect: str, table: Table) -> Any:
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _newest_per_id(rows: Iterable[Row]) -> list[Row]:
    # One statement cannot touch a row twice (PostgreSQL refuses); keep the newest snapshot.
    # Sorted by id: concurrent batches then lock shared rows in the same order.
    newest: dict[str, Row] = {}
    for row in rows:
        held = newest.get(row["id"])
        if held is None or row["updated_at"] >= held["updated_at"]:
            newest[row["id"]] = row
    return [newest[key] for key in sorted(newest)]


def _earliest_per_id(items: Iterable[tuple[str, datetime]]) -> list[tuple[str, datetime]]:
    # A row ended twice keeps the earlier end, whichever arrived first.
    earliest: dict[str, datetime] = {}
    for key, at in items:
        if key not in earliest or at < earliest[key]:
            earliest[key] = at
    return sorted(earliest.items())


def _among(conn: AsyncConnection, column: Any, values: Sequence[str]) -> Any:
    """`column IN values`. On PostgreSQL as `= ANY(array)`: one parameter and one cached
    statement, where an IN list renders (and asyncpg encodes) 500 parameters every call."""
    if conn.dialect.name != "postgresql":
        return column.in_(values)
    return column == any_(cast(literal(list(values), ARRAY(Text)), ARRAY(Text)))


async def upsert_versioned(
    conn: AsyncConnection, table: Table, rows: Sequence[Row]
) -> dict[str, datetime | None]:
    """Insert or move rows forward; returns {id: deleted_at} for the snapshots applied.

    A tombstoned row still takes a newer snapshot taken before its deletion (so the last
    known state does not depend on delivery order) but stays deleted. Only a snapshot of an
    object created after the deletion lifts the tombstone.
    """
    applied: dict[str, datetime | None] = {}
    stmt = _versioned_upsert(conn.dialect.name, table)
    for chunk in _chunks(_newest_per_id(rows)):
        applied.update({r.id: r.deleted_at for r in await conn.execute(stmt, list(chunk))})
    return applied


@cache
def _versioned_upsert(dialect: str, table: Table) -> Any:
    # Rows go as executemany parameters, not .values(rows): SQLAlchemy then compiles the
    # statement once and caches it, and batches the rows into multi-row VALUES itself
    # ("insertmanyvalues"); inlining 500 rows re-compiled ~15k bind parameters every call.
    # Built once per table too: constructing it cost more than running it for small batches.
    stmt = _insert(dialect, table)
    new, old = stmt.excluded, table.c
    lifts = new.created_at > old.deleted_at
    guard = and_(
        or_(old.updated_at.is_(None), new.updated_at >= old.updated_at),
        or_(old.deleted_at.is_(None), lifts, new.updated_at <= old.deleted_at),
    )
    columns: dict[str, Any] = {c.name: new[c.name] for c in table.columns if c.name != "id"}
    columns["deleted_at"] = case(
        (old.deleted_at.is_(None), new.deleted_at),
        (lifts, new.deleted_at),
        (and_(new.deleted_at.is_not(None), new.deleted_at < old.deleted_at), new.deleted_at),
        else_=old.deleted_at,
    )
    return stmt.on_conflict_do_update(
        index_elements=[table.c.id], set_=columns, where=guard
    ).returning(table.c.id, table.c.deleted_at)


_LOCKS_KEY = "clerk_replica_parent_locks"


async def lock_parents(conn: AsyncConnection, ids: Iterable[str]) -> None:
    """Serialise writers of the same users/organizations on PostgreSQL.

    Without it, under READ COMMITTED, a child checked against a live parent can commit after
    the parent's deletion ended its siblings, and stay live. Transaction-scoped advisory
    locks, taken in one statement in a fixed order; SQLite already serialises writers.
    """
    if conn.dialect.name != "postgresql":
        return
    # Locks already taken in this transaction are not asked for again (a batch takes all of
    # its events' locks up front; the writes it then calls ask for theirs).
    transaction = conn.sync_connection.get_transaction() if conn.sync_connection else None
    held_by, held = conn.info.get(_LOCKS_KEY, (None, set()))
    if held_by is not transaction:
        held = set()
        conn.info[_LOCKS_KEY] = (transaction, held)
    keys = sorted(set(ids) - held)
    if not keys:
        return
    held.update(keys)
    await conn.execute(
        text(
            "SELECT pg_advisory_xact_lock(hashtextextended('clerk-replica:' || k, 0)) "
            "FROM (SELECT k FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k) AS ordered"
        ),
        {"keys": keys},
    )


async def tombstone(
    conn: AsyncConnection, table: Table, items: Sequence[tuple[str, datetime]]
) -> None:
    """Mark ids deleted at the given times, keeping a bare tombstone row for unknown ids.

    Only for tables whose columns other than id are nullable (users, organizations, domains).
    """
    stmt = _tombstone_upsert(conn.dialect.name, table)
    for chunk in _chunks(_earliest_per_id(items)):
        await conn.execute(stmt, [{"id": i, "deleted_at": at} for i, at in chunk])


@cache
def _tombstone_upsert(dialect: str, table: Table) -> Any:
    stmt = _insert(dialect, table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.id],
        set_={"deleted_at": stmt.excluded.deleted_at},
        where=or_(table.c.deleted_at.is_(None), stmt.excluded.deleted_at < table.c.deleted_at),
    ).returning(table.c.id)  # multi-row VALUES on asyncpg too (see _replacing_upsert)


async def end_children(
    conn: AsyncConnection, table: Table, column: str, items: Sequence[tuple[str, datetime]]
) -> None:
    """End the live rows of `table` whose `column` names a deleted parent."""
    await _end_live(conn, table, table.c[column], items)


async def _end_live(
    conn: AsyncConnection, table: Table, key: Any, items: Sequence[tuple[str, datetime]]
) -> None:
    by_time: dict[datetime, list[str]] = defaultdict(list)
    for value, at in items:
        by_time[at].append(value)
    for at, values in by_time.items():
        for chunk in _chunks(values):
            await conn.execute(
                update(table)
                .where(key.in_(chunk), or_(table.c.deleted_at.is_(None), table.c.deleted_at > at))
                .values(deleted_at=at)
            )


async def _ended_parents(
    conn: AsyncConnection, table: Table, ids: Iterable[str]
) -> dict[str, datetime]:
    wanted = sorted(set(ids))
    ended: dict[str, datetime] = {}
    for chunk in _chunks(wanted):
        result = await conn.execute(
            select(table.c.id, table.c.deleted_at).where(
                _among(conn, table.c.id, chunk), table.c.deleted_at.is_not(None)
            )
        )
        ended.update({row.id: row.deleted_at for row in result})
    return ended


def _end_with_parents(
    rows: Sequence[Row], parents: Sequence[tuple[str, dict[str, datetime]]]
) -> None:
    for row in rows:
        if row["deleted_at"] is not None:
            continue
        times = [ended[row[col]] for col, ended in parents if row.get(col) in ended]
        if times:
            row["deleted_at"] = min(times)


# -- users ----------------------------------------------------------------------------------


# Each identifier table, and the UserRows attribute holding its rows.
IDENTIFIERS = (
    (t.email_addresses, "email_addresses"),
    (t.phone_numbers, "phone_numbers"),
    (t.external_accounts, "external_accounts"),
)


async def upsert_users(conn: AsyncConnection, snapshots: Sequence[UserRows]) -> set[str]:
    newest: dict[str, UserRows] = {}
    for snap in snapshots:
        held = newest.get(snap.user["id"])
        if held is None or snap.user["updated_at"] >= held.user["updated_at"]:
            newest[snap.user["id"]] = snap
    applied = await upsert_versioned(conn, t.users, [s.user for s in newest.values()])
    live = sorted(i for i, deleted_at in applied.items() if deleted_at is None)
    if live:
        # A deleted user keeps no identifiers, whatever snapshot arrives later.
        await _replace_identifiers(conn, [newest[i] for i in live])
    return set(applied)


async def _replace_identifiers(conn: AsyncConnection, snapshots: Sequence[UserRows]) -> None:
    user_ids = [s.user["id"] for s in snapshots]
    for table, attr in IDENTIFIERS:
        # One row per id, in id order: a statement may not touch a row twice.
        by_id = {row["id"]: row for s in snapshots for row in getattr(s, attr)}
        rows = [by_id[key] for key in sorted(by_id)]
        for chunk in _chunks(user_ids):
            await conn.execute(delete(table).where(_among(conn, table.c.user_id, chunk)))
        stmt = _replacing_upsert(conn.dialect.name, table)
        for chunk in _chunks(rows):
            await conn.execute(stmt, list(chunk))


@cache
def _replacing_upsert(dialect: str, table: Table) -> Any:
    stmt = _insert(dialect, table)
    # RETURNING makes SQLAlchemy send the rows as multi-row VALUES on asyncpg too; without
    # it that dialect falls back to one statement per row.
    return stmt.on_conflict_do_update(
        index_elements=[table.c.id],
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name != "id"},
    ).returning(table.c.id)


async def delete_users(conn: AsyncConnection, items: Sequence[tuple[str, datetime]]) -> None:
    """Tombstone users, drop their identifiers, end their memberships."""
    await lock_parents(conn, (i for i, _ in items))
    await tombstone(conn, t.users, items)
    ids = [i for i, _ in items]
    for table in t.IDENTIFIER_TABLES:
        for chunk in _chunks(ids):
            await conn.execute(delete(table).where(table.c.user_id.in_(chunk)))
    await end_children(conn, t.organization_memberships, "user_id", items)


# -- organizations --------------------------------------------------------------------------


async def upsert_organizations(conn: AsyncConnection, rows: Sequence[Row]) -> set[str]:
    return set(await upsert_versioned(conn, t.organizations, rows))


async def delete_organizations(
    conn: AsyncConnection, items: Sequence[tuple[str, datetime]]
) -> None:
    """Tombstone organizations and end their memberships, invitations and domains."""
    await lock_parents(conn, (i for i, _ in items))
    await tombstone(conn, t.organizations, items)
    for table in (t.organization_memberships, t.organization_invitations, t.organization_domains):
        await end_children(conn, table, "organization_id", items)


# -- memberships ----------------------------------------------------------------------------


async def upsert_memberships(conn: AsyncConnection, rows: Sequence[Row]) -> set[str]:
    m = t.organization_memberships
    rows = [dict(r) for r in _newest_per_id(rows)]
    await lock_parents(conn, [r["user_id"] for r in rows] + [r["organization_id"] for r in rows])
    _end_with_parents(
        rows,
        [
            ("user_id", await _ended_parents(conn, t.users, (r["user_id"] for r in rows))),
            (
                "organization_id",
                await _ended_parents(conn, t.organizations, (r["organization_id"] for r in rows)),
            ),
        ],
    )
    await _settle_live_pairs(conn, rows)
    return set(await upsert_versioned(conn, m, rows))


async def _settle_live_pairs(conn: AsyncConnection, rows: list[Row]) -> None:
    """Keep one live membership per (organization, user): the newest by (created_at, id).

    The newest is chosen among every membership of the pair, ended ones included: a newer
    membership's existence proves the older one ended in Clerk, by its creation at the latest.
    Older live rows in the table are ended then; older incoming rows are stored already ended.
    """
    m = t.organization_memberships
    if not rows:
        return
    pairs = sorted({(r["organization_id"], r["user_id"]) for r in rows})
    stored: list[tuple[str, str, str, datetime, datetime | None]] = []
    for chunk in _chunks(pairs):
        result = await conn.execute(
            select(m.c.id, m.c.organization_id, m.c.user_id, m.c.created_at, m.c.deleted_at).where(
                tuple_(m.c.organization_id, m.c.user_id).in_(list(chunk))
            )
        )
        stored.extend(
            (r.id, r.organization_id, r.user_id, r.created_at, r.deleted_at) for r in result
        )

    candidates: dict[tuple[str, str], list[tuple[datetime, str]]] = defaultdict(list)
    for mid, org_id, user_id, created, _deleted in stored:
        candidates[(org_id, user_id)].append((created, mid))
    for r in rows:
        candidates[(r["organization_id"], r["user_id"])].append((r["created_at"], r["id"]))

    winners = {pair: max(c) for pair, c in candidates.items()}
    losers = []
    for mid, org_id, user_id, _created, deleted in stored:
        win_created, win_id = winners[(org_id, user_id)]
        if win_id != mid and (deleted is None or deleted > win_created):
            losers.append({"b_id": mid, "b_ended": win_created})
    if losers:
        await conn.execute(
            update(m).where(m.c.id == bindparam("b_id")).values(deleted_at=bindparam("b_ended")),
            losers,
        )
    for r in rows:
        win_created, win_id = winners[(r["organization_id"], r["user_id"])]
        if win_id != r["id"] and (r["deleted_at"] is None or r["deleted_at"] > win_created):
            r["deleted_at"] = win_created


async def delete_memberships(conn: AsyncConnection, rows: Sequence[Row]) -> None:
    """A membership deletion carries the whole membership: store it, ended."""
    await upsert_memberships(conn, rows)
    m = t.organization_memberships
    for row in rows:
        await conn.execute(
            update(m)
            .where(
                m.c.id == row["id"],
                or_(m.c.deleted_at.is_(None), m.c.deleted_at > row["deleted_at"]),
            )
            .values(deleted_at=row["deleted_at"])
        )


# -- invitations and domains ----------------------------------------------------------------


async def upsert_org_children(conn: AsyncConnection, table: Table, rows: Sequence[Row]) -> set[str]:
    """Invitations and domains: stored already ended when their organization is deleted."""
    rows = [dict(r) for r in _newest_per_id(rows)]
    org_ids = [r["organization_id"] for r in rows if r["organization_id"]]
    await lock_parents(conn, org_ids)
    _end_with_parents(
        rows, [("organization_id", await _ended_parents(conn, t.organizations, org_ids))]
    )
    return set(await upsert_versioned(conn, table, rows))


async def end_rows(
    conn: AsyncConnection, table: Table, items: Sequence[tuple[str, datetime]]
) -> None:
    """End live rows by id (memberships, invitations: their rows always exist already)."""
    await _end_live(conn, table, table.c.id, items)
