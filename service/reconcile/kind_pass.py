"""One kind's pass over one instance. It lists everything, in segments walked side by side
(each checkpointed page by page), writes what changed (classify: rows missing or older; the
unchanged are skipped) through the kind's writes (rows named with the instance), then, once
every segment has finished, hands over to deletion detection, which considers only the
instance's rows. In a dry run nothing is written: seen ids stay in memory. An incremental run
hands kinds that have an incremental pass to service/reconcile/incremental.py, and lists them
whole when that pass gives way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.clerk.payloads import PayloadError
from service.clerk.rows import RowOptions, Snapshot
from service.config import Settings
from service.db.chunks import chunks
from service.db.dialect import dialect_of
from service.db.errors import describe, is_transient
from service.feed import sources
from service.kinds import writes
from service.kinds.declaration import Kind, Listing
from service.logs import get_logger
from service.reconcile import checkpoints, deletions, incremental, segments, walk
from service.reconcile.clerk_api import ClerkAPI
from service.reconcile.instance import Identity
from service.reconcile.modes import ReconcileOptions
from service.reconcile.paging import total
from service.reconcile.pass_view import Page
from service.reconcile.report import RESTORED_COUNTS, PassReport, ProgressCallback
from service.reconcile.segments import Segment
from service.reconcile.statistics import Statistics
from service.replica.bulk import Encoded, encode
from service.replica.versioned import moves_forward

log = get_logger(__name__)


_GIVE_WAY_EVERY = 5  # objects built between turns of the event loop


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
        identity: Identity,
        since: datetime | None = None,
        counts: dict[str, dict[str, int]] | None = None,
    ) -> None:
        assert kind.listing is not None, f"{kind.name} has no instance-wide list"
        self.engine, self.api, self.settings, self.options = engine, api, settings, options
        self.run_id, self.kind, self.report = run_id, kind, report
        self.instance_id = identity.instance_id
        # Rows naming no instance (stored before the column) are this one's only when the
        # install keeps no other.
        self.owns_unnamed = len(settings.instance_names()) == 1
        self.listing: Listing = kind.listing
        self.started_at = datetime.now(UTC)
        # Objects the listing returns without a time of their own are as new as this pass.
        self.row_options = replace(RowOptions.of(settings), listed_at=self.started_at)
        self.segments: list[Segment] = []  # the plan (empty: none yet)
        self.walkers = 1
        self.listed = False
        self.seen_in_memory: set[str] = set()
        self.restored: dict[str, Any] = {}
        self.relist = False  # a refused pass checkpoints as "nothing listed yet"
        self.statistics = Statistics(engine, kind.tables)
        self.copies = dialect_of(engine).bulk_copy and not self.dry
        self.owned_tables = [o.table for o in kind.owns]
        # Encode pages for COPY ahead while pages bring new objects (a first run), not while
        # they bring none (a nightly run): the guess is the last page's.
        self.expect_new = True
        self.since = since  # incremental: list what changed since then (None: everything)
        self.escalated = False  # the incremental pass found too much differing
        # Children per parent, as this run's listing of the parents says (by parent kind).
        self.counts = {} if counts is None else counts
        self.count_column = incremental.count_column(kind)

    @property
    def dry(self) -> bool:
        return self.run_id is None

    async def run(self, on_progress: ProgressCallback) -> None:
        if not self.dry:
            assert self.run_id is not None
            async with self.engine.begin() as conn:
                saved = await checkpoints.load_progress(conn, self.run_id, self.kind.name)
                self.segments = await checkpoints.load_plan(conn, self.run_id, self.kind.name)
            self._restore(saved)
            if saved.done:
                self.report.status = "completed"
                return
        if self.since is not None and incremental.applies(self):
            try:
                self.report.mode = "incremental"
                await incremental.run(self, self.since)
                self.report.status = (
                    "completed" if self.report.status == "pending" else self.report.status
                )
                on_progress(self.report, None)
                return
            except incremental.ListAll as exc:
                log.info("reconcile.listing_all", kind=self.kind.name, reason=str(exc))
                self.report.mode, self.escalated = "full", exc.escalate
        started = time.monotonic()
        count = await total(self.api, self.listing)
        self.walkers = walk.walkers(self.settings, time.monotonic() - started)
        if not self.listed:
            if not self.segments:
                self.segments = await segments.plan(
                    self.api, self.listing, self.settings.reconcile.page_size, count, self.walkers
                )
                if not self.dry:
                    assert self.run_id is not None
                    async with self.engine.begin() as conn:
                        await checkpoints.save_plan(
                            conn, self.run_id, self.kind.name, self.segments
                        )
            await walk.walk(self, on_progress, count)
            self.listed = True
            await self.save(done=False)
        await deletions.detect(self)
        self.report.status = "completed" if self.report.status == "pending" else self.report.status
        on_progress(self.report, count)

    def attributed(self, conn: AsyncConnection) -> AbstractAsyncContextManager[None]:
        """The changes this pass's writes in `conn` cause name its run (the change feed)."""
        return sources.attributed(
            conn,
            enabled=self.row_options.change_feed,
            run_id=f"reconcile:{self.run_id}",
            instance_id=self.instance_id,
        )

    def owned(self, table: Table) -> ColumnElement[bool]:
        """Rows of `table` that are this instance's to reconcile."""
        column = table.c.instance_id
        if self.owns_unnamed:
            return or_(column == self.instance_id, column.is_(None))
        return column == self.instance_id

    def build(self, item: dict[str, Any]) -> Snapshot | None:
        """The object's rows, of this instance, or None (logged by id) when it cannot be
        stored."""
        try:
            return self.kind.build(item, self.row_options).stamp(self.instance_id)
        except PayloadError as exc:
            log.warning(
                "reconcile.invalid_object",
                instance=self.settings.instance_name,
                kind=self.kind.name,
                id=item.get("id"),
                error=str(exc),
            )
            return None

    def _restore(self, saved: checkpoints.Progress) -> None:
        self.started_at = saved.pass_started_at
        self.listed = saved.listed
        for key in RESTORED_COUNTS:
            if isinstance(saved.counts.get(key), int | float):
                setattr(self.report, key, saved.counts[key])
        self.restored = {key: getattr(self.report, key) for key in RESTORED_COUNTS}

    async def save(self, *, done: bool) -> None:
        if self.dry:
            return
        assert self.run_id is not None
        async with self.engine.begin() as conn:
            await self._checkpoint(conn, done=done)
            if self.relist:  # listed again from scratch: by a new plan
                await checkpoints.save_plan(conn, self.run_id, self.kind.name, [])

    async def _checkpoint(
        self, conn: AsyncConnection, *, done: bool = False, segment: Segment | None = None
    ) -> None:
        """The pass's progress and counts, and `segment`'s position (a page just written)."""
        assert self.run_id is not None
        await checkpoints.save_progress(
            conn,
            self.run_id,
            self.kind.name,
            offset=self.report.listed,
            cursor=None,
            counts={} if self.relist else self.report.counts(),
            listed=self.listed,
            done=done,
        )
        if segment is not None:
            await checkpoints.save_segment(conn, self.run_id, self.kind.name, segment)

    async def build_page(self, page: Page) -> None:
        """Build the page's objects (its `items` are let go: the snapshots keep what they
        need) and, while pages bring new objects, encode them for COPY.

        This runs while the page before is being written: it gives way to that write every
        few objects, so the write's next statement leaves as soon as the server answers the
        last one, instead of after the whole page is built.
        """
        items, page.items = page.items, []
        for n, item in enumerate(items, 1):
            item_id = item.get("id")
            if isinstance(item_id, str):
                page.ids.append(item_id)  # it exists in Clerk, even if we cannot read it
            if self.count_column is not None:
                incremental.note_count(self, item)
            snap = self.build(item)
            if snap is None:
                page.invalid += 1
            else:
                page.built.append(snap)
            if n % _GIVE_WAY_EVERY == 0:
                await asyncio.sleep(0)
        if self.copies and self.expect_new and page.built:
            try:
                page.encoded = encode(self.kind.table, self.owned_tables, page.built)
            except Exception:  # the write meets it again and settles it object by object
                page.encoded = None

    async def apply_page(self, page: Page, after: asyncio.Task[None] | None) -> None:
        """Write a page and checkpoint past it, committing only after the page before it
        (`after`) has: if that one fails, this one rolls back too.

        A page the database refuses for a reason retrying cannot fix is written again object
        by object, so one object it cannot store (counted invalid, logged by id) costs its
        page the batch, never its neighbours or the pass.
        """
        if self.dry:
            self.seen_in_memory.update(page.ids)
            async with self.engine.connect() as conn:
                _, _, counts = await classify(conn, self.kind.table, page.built, self.instance_id)
            self._count(page, counts)
            return
        assert self.run_id is not None
        try:
            if after is not None and self.row_options.change_feed:
                # The feed's lock orders writers by commit: a page holding it must not wait
                # for an earlier page that waits for it.
                await _earlier(after)
            async with self.engine.begin() as conn:
                async with self.attributed(conn):
                    counts = await self._write(conn, page.built, page.encoded)
                await checkpoints.add_seen(conn, self.run_id, self.kind.name, page.ids)
                if after is not None:
                    await _earlier(after)
                self._count(page, counts)
                # The page, its seen ids, its segment's position: all or none.
                await self._checkpoint(conn, segment=page.segment)
        except Exception as exc:
            if is_transient(exc) or isinstance(exc, _EarlierPageFailed):
                raise
            log.warning(
                "reconcile.page_refused",
                instance=self.settings.instance_name,
                kind=self.kind.name,
                error=describe(exc),
            )
            counts = await self._apply_one_by_one(page, after)
        await self.statistics.grew(counts["created"])

    async def _write(
        self, conn: AsyncConnection, built: Sequence[Snapshot], encoded: Encoded | None = None
    ) -> dict[str, int]:
        if not built:
            return {"created": 0, "updated": 0, "unchanged": 0}
        created, updated, counts = await classify(conn, self.kind.table, built, self.instance_id)
        self.expect_new = len(created) * 2 >= len(built)
        erase = self.row_options.erase_deleted_users
        if created:
            await writes.upsert(conn, self.kind, created, erase=erase, new=True, encoded=encoded)
        if updated:
            await writes.upsert(conn, self.kind, updated, erase=erase)
        return counts

    async def _apply_one_by_one(
        self, page: Page, after: asyncio.Task[None] | None
    ) -> dict[str, int]:
        assert self.run_id is not None
        if after is not None:
            await asyncio.shield(after)
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        for snap in page.built:
            try:
                async with self.engine.begin() as conn, self.attributed(conn):
                    for key, value in (await self._write(conn, [snap])).items():
                        counts[key] += value
            except Exception as exc:
                if is_transient(exc):
                    raise
                page.invalid += 1
                log.warning(
                    "reconcile.invalid_object",
                    instance=self.settings.instance_name,
                    kind=self.kind.name,
                    id=snap.id,
                    error=describe(exc),
                )
        async with self.engine.begin() as conn:
            await checkpoints.add_seen(conn, self.run_id, self.kind.name, page.ids)
            self._count(page, counts)
            await self._checkpoint(conn, segment=page.segment)
        return counts

    def _count(self, page: Page, counts: dict[str, int]) -> None:
        """Move the report and the page's segment past `page` (just before its checkpoint)."""
        self.report.listed += page.listed
        self.report.invalid += page.invalid
        for key, value in counts.items():
            setattr(self.report, key, getattr(self.report, key) + value)
        page.segment.position = page.after
        page.segment.done = page.ends_segment


async def classify(
    conn: AsyncConnection, table: Table, built: Sequence[Snapshot], instance_id: str | None = None
) -> tuple[list[Snapshot], list[Snapshot], dict[str, int]]:
    """(created, updated, counts of created, updated and unchanged). A row stored without
    its instance counts as updated: the write names it (`instance_id`)."""
    stored: dict[str, Any] = {}
    ids = [b.id for b in built]
    columns = (table.c.id, table.c.updated_at, table.c.deleted_at, table.c.instance_id)
    among = dialect_of(conn).among
    for chunk in chunks(ids):
        result = await conn.execute(select(*columns).where(among(table.c.id, chunk)))
        stored.update({r.id: r for r in result})
    created: list[Snapshot] = []
    updated: list[Snapshot] = []
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for b in built:
        held = stored.get(b.id)
        if held is None:
            counts["created"] += 1
            created.append(b)
        elif moves_forward(held, b.row) or (held.instance_id is None and instance_id is not None):
            counts["updated"] += 1
            updated.append(b)
        else:
            counts["unchanged"] += 1
    return created, updated, counts
