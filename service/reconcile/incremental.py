"""An incremental pass of one kind: only what changed since the last complete run is listed.

Users: listed newest `updated_at` first until past `since` (missed creations and updates);
then deletions found by counting: Clerk's count of users created in a range against the
replica's live ones, ranges that differ split at the replica's median until listing them costs
no more than splitting further, and only those listed. Memberships: listed per organization
whose `members_count` differs from the replica's live memberships of it, or that changed.
Ends are confirmed by lookup and bounded by the safety share, as in a full pass. What this
cannot see is docs/explanation/reconcile-modes.md's.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import func, select

from service.clerk.timestamps import from_ms
from service.kinds.declaration import Kind
from service.kinds.registry import BY_NAME, KINDS
from service.reconcile import deletions
from service.reconcile.clerk_api import ClerkRequestError
from service.reconcile.paging import Position, objects_of, pages
from service.reconcile.pass_view import Page, PassView
from service.reconcile.segments import Segment

OVERLAP = 5  # objects each page of the changed list reads again (a deletion shifts it back)


class ListAll(Exception):
    """The incremental pass gives way to the full listing (`escalate`: the run turns full)."""

    def __init__(self, reason: str, *, escalate: bool) -> None:
        super().__init__(reason)
        self.escalate = escalate


def applies(run: PassView) -> bool:
    """Whether the kind has an incremental pass (the others are listed whole every run)."""
    return run.listing.changed_order is not None or run.listing.by_parent is not None


def count_column(kind: Kind) -> str | None:
    """The field of `kind`'s listed objects that counts the children another kind lists per
    object of it (organizations: members_count), if any."""
    for other in KINDS:
        by_parent = other.listing.by_parent if other.listing else None
        if by_parent is not None and by_parent.parent == kind.name:
            return by_parent.count_column
    return None


def note_count(run: PassView, item: dict[str, Any]) -> None:
    """Keep a listed parent's count of children for the children's pass of this run."""
    assert run.count_column is not None
    count, item_id = item.get(run.count_column), item.get("id")
    if isinstance(count, int) and isinstance(item_id, str):
        run.counts.setdefault(run.kind.name, {})[item_id] = count


def ms(at: datetime) -> int:
    """Epoch ms of `at` (exact for the whole milliseconds Clerk's times are)."""
    return round(at.timestamp() * 1000)


async def run(run: PassView, since: datetime) -> None:
    if run.listing.changed_order is not None:
        await _changed(run, ms(since))
        if run.listing.counts_by_created and run.listing.count_path is not None:
            await _deleted_by_count(run)
    elif run.listing.by_parent is not None:
        await _per_parent(run, since)


async def _write(run: PassView, items: list[dict[str, Any]]) -> list[str]:
    """Write listed objects as a full pass writes a page; their ids."""
    page = Page(len(items), Segment(0), Position(), items=items)
    await run.build_page(page)
    await run.apply_page(page, None)
    return page.ids


async def _changed(run: PassView, since_ms: int) -> None:
    """List newest-updated first, down to `since_ms`, writing what came."""
    size, offset = run.settings.reconcile.page_size, 0
    previous: set[Any] = set()
    while True:
        params = {
            **run.listing.params,
            "order_by": run.listing.changed_order,
            "limit": size,
            "offset": offset,
        }
        items = objects_of(run.listing, await run.api.get(run.listing.path, params))
        recent = [i for i in items if not _older(i, since_ms)]
        ids = {i.get("id") for i in items}
        if items and ids <= previous:
            return  # the same page again: the API ignores where we asked to start
        previous = ids
        if recent:
            await _write(run, recent)
        if len(items) < size or len(recent) < len(items):
            return
        offset += max(1, len(items) - OVERLAP)


async def _created_since(run: PassView, since_ms: int) -> None:
    """List newest-created first, down to `since_ms`, writing what came."""
    size = run.settings.reconcile.page_size
    position = Position(use_cursor=False)
    async for items in pages(run.api, run.listing, size, position, bounds={}, newest_first=True):
        recent = [i for i in items if not _older(i, since_ms, "created_at")]
        if recent:
            await _write(run, recent)
        if len(recent) < len(items):
            return


def _older(item: dict[str, Any], since_ms: int, field: str = "updated_at") -> bool:
    at = item.get(field)
    return isinstance(at, int) and at < since_ms


async def _clerk_count(run: PassView, low: int | None, high: int) -> int:
    """Clerk's users created in [low, high) ms (the bounds are exclusive, in the spec's
    reading; an inclusive reading only makes a range differ, which listing it settles)."""
    params: dict[str, Any] = {"created_at_before": high}
    if low is not None:
        params["created_at_after"] = low - 1
    assert run.listing.count_path is not None
    body = await run.api.get(run.listing.count_path, params)
    count = body.get("total_count") if isinstance(body, dict) else None
    if not isinstance(count, int):
        raise ClerkRequestError(f"{run.listing.count_path}: no total_count", 200)
    return count


def _in_range(run: PassView, low: int | None, high: int) -> list[Any]:
    table = run.kind.table
    where = [table.c.deleted_at.is_(None), run.owned(table), table.c.created_at < from_ms(high)]
    if low is not None:
        where.append(table.c.created_at >= from_ms(low))
    return where


async def _replica_count(run: PassView, low: int | None, high: int) -> int:
    async with run.engine.connect() as conn:
        stmt = select(func.count()).where(*_in_range(run, low, high))
        return int((await conn.execute(stmt)).scalar_one())


async def _median(run: PassView, low: int | None, high: int, count: int) -> int | None:
    """The created_at (ms) of the replica's middle row in the range, if strictly inside."""
    table = run.kind.table
    async with run.engine.connect() as conn:
        at = (
            await conn.execute(
                select(table.c.created_at)
                .where(*_in_range(run, low, high))
                .order_by(table.c.created_at)
                .offset(count // 2)
                .limit(1)
            )
        ).scalar()
    if at is None:
        return None
    mid = ms(at)
    return mid if (low is None or mid > low) and mid < high else None


async def _deleted_by_count(run: PassView) -> None:
    """Find the created_at ranges whose counts differ, list them, end what Clerk lacks."""

    live = await _replica_count(run, None, ms(run.started_at))
    try:
        listed = await differing_ranges(
            partial(_clerk_count, run),
            partial(_replica_count, run),
            partial(_median, run),
            ms(run.started_at),
            run.settings.reconcile.page_size,
            run.settings.reconcile.full_when_differing_share,
        )
    except TooManyDiffer as exc:
        raise ListAll(f"{exc}: listing everything", escalate=True) from None
    missing: list[dict[str, Any]] = []
    for low, high in listed:
        missing += await _list_range(run, low, high)
    await deletions.end_missing(run, missing, live, partial(_write, run))


async def _list_range(run: PassView, low: int | None, high: int) -> list[dict[str, Any]]:
    """List the range and write it; the replica's live rows in it Clerk did not list."""
    bounds: dict[str, Any] = {"created_at_before": high}
    if low is not None:
        bounds["created_at_after"] = low - 1
    seen: set[str] = set()
    size = run.settings.reconcile.page_size
    async for items in pages(run.api, run.listing, size, Position(), bounds=bounds):
        seen.update(await _write(run, items))
    return [r for r in await _rows(run, _in_range(run, low, high)) if r["id"] not in seen]


async def _rows(run: PassView, where: Sequence[Any]) -> list[dict[str, Any]]:
    """The rows `where` selects, with what the kind's lookup needs, created before the pass."""
    table = run.kind.table
    needed = run.kind.lookup.columns if run.kind.lookup else ("id",)
    stmt = select(*(table.c[n] for n in needed)).where(*where, table.c.created_at < run.started_at)
    async with run.engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(stmt)]


async def _per_parent(run: PassView, since: datetime) -> None:
    """List the children of each parent whose count differs or that changed since `since`."""
    by_parent = run.listing.by_parent
    assert by_parent is not None
    listed = run.counts.get(by_parent.parent)
    if listed is None:  # the parents were not listed in this run (or before a resume)
        raise ListAll(f"no {by_parent.parent} listed in this run to count", escalate=False)
    parents, children = BY_NAME[by_parent.parent].table, run.kind.table
    column = children.c[by_parent.column]
    await _created_since(run, ms(since))  # creations first: one page finds most of them
    async with run.engine.connect() as conn:
        counted: dict[str, int] = dict(
            (
                await conn.execute(
                    select(column, func.count())
                    .where(children.c.deleted_at.is_(None), run.owned(children))
                    .group_by(column)
                )
            ).all()
        )
        found = (
            await conn.execute(
                select(parents.c.id, parents.c.updated_at)
                .where(parents.c.deleted_at.is_(None), run.owned(parents))
                .order_by(parents.c.id)
            )
        ).all()
    chosen = [
        pid
        for pid, updated in found
        if (pid in listed and listed[pid] != counted.get(pid, 0))
        or (updated is not None and updated >= since)
    ]
    size = run.settings.reconcile.page_size
    live = sum(counted.values())
    if len(chosen) > math.ceil(live / size) + 1:
        raise ListAll(f"{len(chosen)} parents differ: the full list is cheaper", escalate=False)
    missing: list[dict[str, Any]] = []
    answered: set[str] = set()  # missing from a one-page answer: that answer confirms it
    for pid in chosen:
        seen: set[str] = set()
        path = by_parent.path.format(id=pid)
        offset = 0
        while True:
            params = {"limit": size, "offset": offset, "order_by": "+created_at"}
            body = await run.api.get_or_none(path, params)
            if body is None:  # the parent is gone: its end ends its children
                break
            items = objects_of(run.listing, body)
            if items:
                seen.update(await _write(run, items))
            if len(items) < size:
                break
            offset += len(items)
        if body is not None:
            where = [children.c.deleted_at.is_(None), run.owned(children), column == pid]
            gone = [r for r in await _rows(run, where) if r["id"] not in seen]
            if offset == 0:
                answered.update(r["id"] for r in gone)
            missing += gone
    await deletions.end_missing(run, missing, live, partial(_write, run), answered)


Count = Callable[[int | None, int], Awaitable[int]]
Median = Callable[[int | None, int, int], Awaitable[int | None]]


class TooManyDiffer(Exception):
    """More differ than the share allows: listing everything is as cheap, and safer."""


async def differing_ranges(
    clerk: Count, replica: Count, median: Median, cutoff: int, page_size: int, share: float
) -> list[tuple[int | None, int]]:
    """The created_at ranges [low, high) ms, before `cutoff`, to list: their counts differ,
    and splitting them further (one count each) would cost more than listing them.

    `clerk` and `replica` count a range; `median` is the replica's middle created_at in a
    range, strictly inside it (None: the range cannot be split). Raises TooManyDiffer when
    more than `share` of the replica's rows differ by count.
    """
    clerk_total, replica_total = await clerk(None, cutoff), await replica(None, cutoff)
    if abs(clerk_total - replica_total) > share * max(replica_total, 1):
        raise TooManyDiffer(f"{abs(clerk_total - replica_total)} of {replica_total} differ")
    ranges: list[tuple[int | None, int, int, int]] = [(None, cutoff, clerk_total, replica_total)]
    listed: list[tuple[int | None, int]] = []
    while ranges:
        low, high, c, r = ranges.pop()
        if c == r:
            continue
        mid = None
        if math.ceil(max(c, r, 1) / page_size) > abs(c - r) + 1:  # listing costs more
            mid = await median(low, high, r)
        if mid is None:
            listed.append((low, high))
            continue
        c_low, r_low = await clerk(low, mid), await replica(low, mid)
        ranges += [(mid, high, c - c_low, r - r_low), (low, mid, c_low, r_low)]
    return sorted(listed, key=lambda edge: edge[1])
