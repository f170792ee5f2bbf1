"""Deletion detection: after a complete listing, tombstone the instance's live rows Clerk no
longer lists, each confirmed by a lookup (read back as its kind's `Lookup` says), and never
more than the safety share without --force. Only rows of the instance listed are candidates
(and counted for the share): another instance's rows are never missing from this one's
listing. An incremental pass ends what its partial listings lacked through end_missing, under
the same confirmation and share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, and_, func, select

from service.clerk.rows import Snapshot
from service.db.chunks import CHUNK
from service.kinds import writes
from service.kinds.declaration import BY_IDS, Kind
from service.reconcile import checkpoints
from service.reconcile.checkpoints import seen
from service.reconcile.clerk_api import ClerkAPI
from service.reconcile.paging import objects_of
from service.reconcile.pass_view import PassView


async def detect(run: PassView) -> None:
    """Tombstone live rows Clerk no longer lists (the listing is complete)."""
    table = run.kind.table
    if not run.dry:
        # The anti-join below needs true sizes: planned on stale statistics of the seen ids,
        # it degrades badly. After a backfill, every table it grew: its last ANALYZE was quick.
        grown = run.statistics.tables if run.report.created else ()
        await run.statistics.analyze(tuple(dict.fromkeys((table, seen, *grown))))
    async with run.engine.connect() as conn:
        live = (
            await conn.execute(
                select(func.count()).where(table.c.deleted_at.is_(None), run.owned(table))
            )
        ).scalar_one()
    missing = 0
    async for chunk in _candidates(run):
        missing += len(chunk)
    refusal = over_share(run, missing, live)
    if refusal is not None:
        run.report.status, run.report.error = "refused", refusal
        # The next run lists again: a refusal must never be settled on a stale listing.
        run.listed = False
        run.segments = []  # and by a new plan
        run.relist = True
        if not run.dry:
            assert run.run_id is not None
            async with run.engine.begin() as conn:
                await checkpoints.clear_seen(conn, run.run_id, run.kind.name)
        return
    now = datetime.now(UTC)
    # Keyset by id: rows tombstoned meanwhile drop out, the scan still moves forward.
    async for chunk in _candidates(run):
        await tombstone(run, chunk, now)


def over_share(run: PassView, missing: int, live: int) -> str | None:
    """Why ending `missing` of `live` rows is refused (more than the safety share, without
    --force), or None when it is allowed."""
    allowed = max(
        run.settings.reconcile.delete_floor, int(live * run.settings.reconcile.max_delete_share)
    )
    if missing <= allowed or run.options.force:
        return None
    return (
        f"{missing} of {live} live {run.kind.name} are missing from Clerk, more "
        f"than the safety limit of {allowed}: nothing was tombstoned; rerun with --force "
        "if that is right"
    )


async def tombstone(
    run: PassView, rows: Sequence[dict[str, Any]], now: datetime, *, confirmed: bool = False
) -> None:
    """End the rows Clerk confirms gone (a lookup each, when confirming and not `confirmed`
    already); store those it still has."""
    gone: list[tuple[str, datetime]] = []
    alive: list[Snapshot] = []
    for row in rows:
        confirm = run.options.confirm_deletions and not confirmed
        if confirm and run.kind.lookup is not None and not can_look_up(run.kind, row):
            run.report.unconfirmed += 1
            continue
        found = await look_up(run.api, run.kind, row) if confirm else None
        if found is None:
            gone.append((row["id"], now))
            continue
        # The listing skipped it (offset drift): it is alive, store what Clerk has.
        snap = run.build(found)
        if snap is None:
            run.report.invalid += 1
        else:
            alive.append(snap)
    run.report.tombstoned += len(gone)
    if run.dry:
        return
    async with run.engine.begin() as conn, run.attributed(conn):
        erase = run.row_options.erase_deleted_users
        if gone:
            await writes.end(conn, run.kind, gone, erase=erase, instance_id=run.instance_id)
        if alive:
            await writes.upsert(conn, run.kind, alive, erase=erase)


async def end_missing(
    run: PassView,
    missing: list[dict[str, Any]],
    live: int,
    write: Callable[[list[dict[str, Any]]], Awaitable[object]],
    answered: Collection[str] = (),
) -> None:
    """End `missing` (rows an incremental pass's listings lacked) once confirmed gone, within
    the safety share; `write` stores what a lookup still finds. Those in `answered` were
    missing from a whole list Clerk gave in one answer, which no offset drift can have
    skipped: the lookup's own question (the same list, filtered), already answered."""
    refusal = over_share(run, len(missing), live)
    if refusal is not None:
        run.report.status, run.report.error = "refused", refusal
        return
    now = datetime.now(UTC)
    if answered and run.options.confirm_deletions:
        # Only rows whose lookup could be asked: the others stay unconfirmed, as in a full run.
        settled = [r for r in missing if r["id"] in answered and can_look_up(run.kind, r)]
        await tombstone(run, settled, now, confirmed=True)
        done = {r["id"] for r in settled}
        missing = [r for r in missing if r["id"] not in done]
    by_ids = run.listing.by_ids if run.options.confirm_deletions else None
    step = BY_IDS if by_ids else 500
    for start in range(0, len(missing), step):
        rows = missing[start : start + step]
        if by_ids is None:
            await tombstone(run, rows, now)
            continue
        # Confirmed a hundred at a time: what the id filter still lists lives.
        params = {**run.listing.params, by_ids: [r["id"] for r in rows], "limit": BY_IDS}
        found = objects_of(run.listing, await run.api.get(run.listing.path, params))
        alive = {i.get("id") for i in found}
        if found:
            await write(found)
        gone = [r for r in rows if r["id"] not in alive]
        await tombstone(run, gone, now, confirmed=True)


async def _candidates(run: PassView) -> AsyncIterator[list[dict[str, Any]]]:
    """Live rows created before the pass started that the listing did not return, by id."""
    table = run.kind.table
    needed = run.kind.lookup.columns if run.kind.lookup else ("id",)
    columns = [table.c[name] for name in needed]
    after = ""
    while True:
        stmt = (
            select(*columns)
            .where(
                table.c.deleted_at.is_(None),
                table.c.created_at < run.started_at,
                table.c.id > after,
                run.owned(table),
            )
            .order_by(table.c.id)
            .limit(CHUNK)
        )
        if not run.dry:
            stmt = stmt.where(~_seen_exists(table, run.run_id, run.kind.name))
        async with run.engine.connect() as conn:
            rows = [dict(r._mapping) for r in await conn.execute(stmt)]
        if not rows:
            return
        after = rows[-1]["id"]
        if run.dry:
            rows = [r for r in rows if r["id"] not in run.seen_in_memory]
        if rows:
            yield rows


def _seen_exists(table: Table, run_id: int | None, kind: str) -> Any:
    return (
        select(seen.c.object_id)
        .where(
            and_(
                seen.c.run_id == run_id,
                seen.c.kind == kind,
                seen.c.object_id == table.c.id,
            )
        )
        .exists()
    )


def can_look_up(kind: Kind, row: Mapping[str, Any]) -> bool:
    """Whether the row has every column its kind's lookup needs."""
    return kind.lookup is not None and kind.lookup.request(row) is not None


async def look_up(api: ClerkAPI, kind: Kind, row: Mapping[str, Any]) -> dict[str, Any] | None:
    """Clerk's current object for a stored row, or None when Clerk no longer has it (also
    when the list it is found in belongs to an owner that is gone). Only an object with the
    row's own id counts: anything else the API answers is not proof that it lives."""
    if kind.lookup is None:
        return None
    request = kind.lookup.request(row)
    if request is None:
        return None
    path, params = request
    found = await api.get_or_none(path, params or None)
    if not kind.lookup.in_list:
        return found if isinstance(found, dict) and found.get("id") == row["id"] else None
    for item in found.get("data", []) if isinstance(found, dict) else []:
        if isinstance(item, dict) and item.get("id") == row["id"]:
            return item
    return None
