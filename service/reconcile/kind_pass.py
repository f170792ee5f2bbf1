"""One kind's pass: list everything (checkpointing each page), write what changed through the
kind's writes, then hand over to deletion detection. In a dry run nothing is written: seen ids
stay in memory."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.clerk.payloads import PayloadError
from service.clerk.rows import RowOptions, Snapshot
from service.config import Settings
from service.db.dialect import dialect_of
from service.db.errors import describe, is_transient
from service.kinds import writes
from service.kinds.declaration import Kind, Listing
from service.logs import get_logger
from service.reconcile import checkpoints, deletions
from service.reconcile.classify import classify
from service.reconcile.clerk_api import ClerkAPI
from service.reconcile.options import ReconcileOptions
from service.reconcile.paging import Position, pages, total
from service.reconcile.report import RESTORED_COUNTS, PassReport, ProgressCallback
from service.reconcile.statistics import Statistics
from service.replica.bulk import copy_new

log = get_logger(__name__)

_PREFETCH = 1  # built pages waiting for a writer


@dataclass
class _Page:
    """One listed page, built: what the writer needs, and where the listing stands after it."""

    listed: int
    after: Position
    ids: list[str] = field(default_factory=list)
    built: list[Snapshot] = field(default_factory=list)
    invalid: int = 0


class _EarlierPageFailed(Exception):
    """The page before this one failed (its own error is what `_list` raises)."""


async def _earlier(page: asyncio.Task[None]) -> None:
    try:
        await asyncio.shield(page)
    except Exception as exc:
        raise _EarlierPageFailed() from exc


class KindPass:
    def __init__(
        self,
        engine: AsyncEngine,
        api: ClerkAPI,
        settings: Settings,
        options: ReconcileOptions,
        run_id: int | None,
        kind: Kind,
        report: PassReport,
    ) -> None:
        assert kind.listing is not None, f"{kind.name} has no instance-wide list"
        self.engine, self.api, self.settings, self.options = engine, api, settings, options
        self.run_id, self.kind, self.report = run_id, kind, report
        self.listing: Listing = kind.listing
        self.started_at = datetime.now(UTC)
        # Objects the listing returns without a time of their own are as new as this pass.
        self.row_options = replace(RowOptions.of(settings), listed_at=self.started_at)
        self.position = Position()
        self.listed = False
        self.seen_in_memory: set[str] = set()
        self.restored: dict[str, Any] = {}
        self.relist = False  # a refused pass checkpoints as "nothing listed yet"
        self.statistics = Statistics(engine, kind.tables)

    @property
    def dry(self) -> bool:
        return self.run_id is None

    async def run(self, on_progress: ProgressCallback) -> None:
        if not self.dry:
            assert self.run_id is not None
            async with self.engine.begin() as conn:
                saved = await checkpoints.load_progress(conn, self.run_id, self.kind.name)
            self._restore(saved)
            if saved.done:
                self.report.status = "completed"
                return
        count = await total(self.api, self.listing)
        if not self.listed:
            await self._list(on_progress, count)
            self.listed = True
            await self.save(done=False)
        await deletions.detect(self)
        self.report.status = "completed" if self.report.status == "pending" else self.report.status
        on_progress(self.report, count)

    def build(self, item: dict[str, Any]) -> Snapshot | None:
        """The object's rows, or None (logged by id) when it cannot be stored."""
        try:
            return self.kind.build(item, self.row_options)
        except PayloadError as exc:
            log.warning(
                "reconcile.invalid_object",
                resource=self.kind.name,
                id=item.get("id"),
                error=str(exc),
            )
            return None

    async def _list(self, on_progress: ProgressCallback, count: int | None) -> None:
        """Fetch and build the next pages while the current one is written.

        Memory stays a few pages whatever the instance's size: two being written, `_PREFETCH`
        queued, one being fetched. The fetcher pages on its own copy of the position: each
        page carries where the listing stands after it, and only a committed page moves the
        checkpoint there.
        """
        queue: asyncio.Queue[_Page | BaseException | None] = asyncio.Queue(maxsize=_PREFETCH)
        fetching = replace(self.position)

        async def fetch() -> None:
            try:
                page_size = self.settings.reconcile_page_size
                async for items in pages(self.api, self.listing, page_size, fetching, count):
                    await queue.put(self._build(items, replace(fetching)))
            except Exception as exc:  # handed over in order, after the pages before it
                await queue.put(exc)
                return
            await queue.put(None)

        fetcher = asyncio.create_task(fetch())
        # Where writers run concurrently, the next page is written while the current one
        # commits, so this process prepares one page's statements while the server executes
        # the other's. Pages still commit in order.
        overlap = not self.dry and dialect_of(self.engine).concurrent_writers
        writing: list[asyncio.Task[None]] = []  # at most two pages: committing, and next
        try:
            while (page := await queue.get()) is not None:
                if isinstance(page, BaseException):
                    raise page
                before = writing[-1] if writing else None
                writing.append(asyncio.create_task(self._apply_page(page, after=before)))
                if not overlap or len(writing) == 2:
                    await writing.pop(0)
                    on_progress(self.report, count)
            while writing:
                await writing.pop(0)
                on_progress(self.report, count)
        finally:
            for task in (fetcher, *writing):
                task.cancel()
                with suppress(asyncio.CancelledError, Exception):  # the first error is raised
                    await task

    def _restore(self, saved: checkpoints.Progress) -> None:
        self.started_at = saved.pass_started_at
        self.position = Position.restore(saved.offset, saved.cursor)
        self.listed = saved.listed
        for key in RESTORED_COUNTS:
            if isinstance(saved.counts.get(key), int | float):
                setattr(self.report, key, saved.counts[key])
        self.restored = {key: getattr(self.report, key) for key in RESTORED_COUNTS}

    async def save(self, *, done: bool) -> None:
        if self.dry:
            return
        async with self.engine.begin() as conn:
            await self._checkpoint(conn, done=done)

    async def _checkpoint(self, conn: AsyncConnection, *, done: bool = False) -> None:
        assert self.run_id is not None
        await checkpoints.save_progress(
            conn,
            self.run_id,
            self.kind.name,
            offset=self.position.offset,
            cursor=self.position.cursor,
            counts={} if self.relist else self.report.counts(),
            listed=self.listed,
            done=done,
        )

    def _build(self, items: list[dict[str, Any]], after: Position) -> _Page:
        page = _Page(listed=len(items), after=after)
        for item in items:
            item_id = item.get("id")
            if isinstance(item_id, str):
                page.ids.append(item_id)  # it exists in Clerk, even if we cannot read it
            snap = self.build(item)
            if snap is None:
                page.invalid += 1
            else:
                page.built.append(snap)
        return page

    async def _apply_page(self, page: _Page, after: asyncio.Task[None] | None) -> None:
        """Write a page and checkpoint past it, committing only after the page before it
        (`after`) has: if that one fails, this one rolls back too.

        A page the database refuses for a reason retrying cannot fix is written again object
        by object, so one object it cannot store (counted invalid, logged by id) costs its
        page the batch, never its neighbours or the pass.
        """
        if self.dry:
            self.seen_in_memory.update(page.ids)
            async with self.engine.connect() as conn:
                _, _, counts = await classify(conn, self.kind.table, page.built)
            self._count(page, counts)
            return
        assert self.run_id is not None
        try:
            async with self.engine.begin() as conn:
                counts = await self._write(conn, page.built)
                await checkpoints.add_seen(conn, self.run_id, self.kind.name, page.ids)
                if after is not None:
                    await _earlier(after)
                self._count(page, counts)
                await self._checkpoint(conn)  # the page, its seen ids, the cursor: all or none
        except Exception as exc:
            if is_transient(exc) or isinstance(exc, _EarlierPageFailed):
                raise
            log.warning("reconcile.page_refused", resource=self.kind.name, error=describe(exc))
            counts = await self._apply_one_by_one(page, after)
        await self.statistics.grew(counts["created"])

    async def _write(self, conn: AsyncConnection, built: Sequence[Snapshot]) -> dict[str, int]:
        created, updated, counts = await classify(conn, self.kind.table, built)
        if created and not (
            self.kind.copies_new
            and await copy_new(conn, self.kind.table, [o.table for o in self.kind.owns], created)
        ):
            updated = created + updated
        if updated:
            await writes.upsert(
                conn, self.kind, updated, erase=self.row_options.erase_deleted_users
            )
        return counts

    async def _apply_one_by_one(
        self, page: _Page, after: asyncio.Task[None] | None
    ) -> dict[str, int]:
        assert self.run_id is not None
        if after is not None:
            await asyncio.shield(after)
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        for snap in page.built:
            try:
                async with self.engine.begin() as conn:
                    for key, value in (await self._write(conn, [snap])).items():
                        counts[key] += value
            except Exception as exc:
                if is_transient(exc):
                    raise
                page.invalid += 1
                log.warning(
                    "reconcile.invalid_object",
                    resource=self.kind.name,
                    id=snap.id,
                    error=describe(exc),
                )
        async with self.engine.begin() as conn:
            await checkpoints.add_seen(conn, self.run_id, self.kind.name, page.ids)
            self._count(page, counts)
            await self._checkpoint(conn)
        return counts

    def _count(self, page: _Page, counts: dict[str, int]) -> None:
        """Move the report and position past `page` (just before its checkpoint)."""
        self.report.listed += page.listed
        self.report.invalid += page.invalid
        for key, value in counts.items():
            setattr(self.report, key, getattr(self.report, key) + value)
        self.position = page.after
