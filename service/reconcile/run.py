"""One reconcile run: for each resource, list everything (checkpointing each page), apply what
changed through the webhook writes, then tombstone what Clerk no longer has."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.apply.payloads import PayloadError
from service.apply.rows import Row, RowOptions
from service.config import Settings
from service.logs import get_logger
from service.metrics import RECONCILE_OBJECTS
from service.reconcile import checkpoints
from service.reconcile.clerk_api import ClerkAPI, ClerkAuthError, ClerkError
from service.reconcile.lock import LeaseLock
from service.reconcile.resources import RESOURCES, Built, Position, Resource, main_row, pages
from service.reconcile.tables import RunStatus, seen

log = get_logger(__name__)

LOCK_NAME = "reconcile"
_RESTORED_COUNTS = (
    "listed",
    "created",
    "updated",
    "unchanged",
    "tombstoned",
    "invalid",
    "requests",
    "throttled",
    "seconds",
)
_CHUNK = 500


@dataclass(frozen=True)
class ReconcileOptions:
    resources: tuple[str, ...] = tuple(RESOURCES)
    dry_run: bool = False
    force: bool = False  # tombstone beyond the safety share
    confirm_deletions: bool = True
    restart: bool = False  # ignore an unfinished run instead of resuming it
    trigger: str = "cli"


@dataclass
class PassReport:
    resource: str
    status: str = "pending"  # completed | failed | refused
    listed: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    tombstoned: int = 0
    invalid: int = 0
    requests: int = 0
    throttled: int = 0
    seconds: float = 0.0
    error: str | None = None

    def counts(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunReport:
    run_id: int | None
    dry_run: bool
    resumed: bool = False
    passes: list[PassReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.passes) and all(p.status == "completed" for p in self.passes)

    def summary(self) -> dict[str, Any]:
        return {p.resource: p.counts() for p in self.passes}


ProgressCallback = Callable[[PassReport, int | None], None]


def _noop(_report: PassReport, _total: int | None) -> None:
    return None


async def reconcile(
    engine: AsyncEngine,
    api: ClerkAPI,
    settings: Settings,
    options: ReconcileOptions,
    on_progress: ProgressCallback = _noop,
) -> RunReport:
    """Run (or resume) a reconcile. Raises AlreadyRunning, or ClerkAuthError for a bad key."""
    names = [n for n in RESOURCES if n in options.resources]
    if options.dry_run:
        report = RunReport(run_id=None, dry_run=True)
        await _passes(engine, api, settings, options, report, names, on_progress)
        return report

    lock = LeaseLock(engine, LOCK_NAME, settings.reconcile_lock_ttl_seconds)
    async with lock.held():
        async with engine.begin() as conn:
            run_id, resumed = await checkpoints.open_run(
                conn, trigger=options.trigger, resources=names, restart=options.restart
            )
        report = RunReport(run_id=run_id, dry_run=False, resumed=resumed)
        error: str | None = None
        try:
            await _passes(engine, api, settings, options, report, names, on_progress)
        except ClerkAuthError as exc:
            error = str(exc)
            raise
        finally:
            failed = [p for p in report.passes if p.status != "completed"]
            error = error or "; ".join(f"{p.resource}: {p.error}" for p in failed) or None
            async with engine.begin() as conn:
                await checkpoints.finish_run(
                    conn,
                    run_id,
                    status=RunStatus.COMPLETED if report.ok else RunStatus.FAILED,
                    summary=report.summary(),
                    error=error,
                )
            log.info("reconcile.finished", run_id=run_id, ok=report.ok, summary=report.summary())
    return report


async def _passes(
    engine: AsyncEngine,
    api: ClerkAPI,
    settings: Settings,
    options: ReconcileOptions,
    report: RunReport,
    names: Sequence[str],
    on_progress: ProgressCallback,
) -> None:
    for name in names:
        pass_report = PassReport(resource=name)
        report.passes.append(pass_report)
        runner = _Pass(engine, api, settings, options, report.run_id, RESOURCES[name], pass_report)
        started, before = time.monotonic(), (api.stats.requests, api.stats.throttled)
        try:
            await runner.run(on_progress)
        except ClerkAuthError:
            pass_report.status, pass_report.error = "failed", "Clerk rejected the key"
            raise
        except (ClerkError, PayloadError) as exc:
            pass_report.status, pass_report.error = "failed", str(exc)
            log.error("reconcile.pass_failed", resource=name, error=str(exc))
        finally:
            if not options.dry_run:  # only what this process wrote, not what a resume restored
                for change in ("created", "updated", "tombstoned"):
                    done = getattr(pass_report, change) - runner.restored.get(change, 0)
                    RECONCILE_OBJECTS.labels(name, change).inc(max(0, done))
            pass_report.requests += api.stats.requests - before[0]
            pass_report.throttled += api.stats.throttled - before[1]
            pass_report.seconds += round(time.monotonic() - started, 3)
            await runner.save(done=pass_report.status == "completed")


class _Pass:
    """One resource's pass. In a dry run nothing is written: seen ids stay in memory."""

    def __init__(
        self,
        engine: AsyncEngine,
        api: ClerkAPI,
        settings: Settings,
        options: ReconcileOptions,
        run_id: int | None,
        resource: Resource,
        report: PassReport,
    ) -> None:
        self.engine, self.api, self.settings, self.options = engine, api, settings, options
        self.run_id, self.resource, self.report = run_id, resource, report
        self.row_options = RowOptions(store_private_metadata=settings.store_private_metadata)
        self.position = Position()
        self.listed = False
        self.started_at = datetime.now(UTC)
        self.seen_in_memory: set[str] = set()
        self.restored: dict[str, Any] = {}
        self.relist = False  # a refused pass checkpoints as "nothing listed yet"

    @property
    def dry(self) -> bool:
        return self.run_id is None

    async def run(self, on_progress: ProgressCallback) -> None:
        if not self.dry:
            assert self.run_id is not None
            async with self.engine.begin() as conn:
                saved = await checkpoints.load_progress(conn, self.run_id, self.resource.name)
            if saved.done:
                self._restore(saved)
                self.report.status = "completed"
                return
            self._restore(saved)
        total = await self._total()
        if not self.listed:
            async for items in pages(
                self.api, self.resource, self.settings.reconcile_page_size, self.position
            ):
                await self._apply_page(items)
                on_progress(self.report, total)
            self.listed = True
            await self.save(done=False)
        await self._detect_deletions()
        self.report.status = "completed" if self.report.status == "pending" else self.report.status
        on_progress(self.report, total)

    def _restore(self, saved: checkpoints.Progress) -> None:
        self.started_at = saved.pass_started_at
        self.position = Position.restore(saved.offset, saved.cursor)
        self.listed = saved.listed
        for key in _RESTORED_COUNTS:
            if isinstance(saved.counts.get(key), int | float):
                setattr(self.report, key, saved.counts[key])
        self.restored = {key: getattr(self.report, key) for key in _RESTORED_COUNTS}

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
            self.resource.name,
            offset=self.position.offset,
            cursor=self.position.cursor,
            counts={} if self.relist else self.report.counts(),
            listed=self.listed,
            done=done,
        )

    async def _total(self) -> int | None:
        if self.resource.bare_array:  # users: the list carries no total
            body = await self.api.get(f"{self.resource.path}/count")
        else:
            body = await self.api.get(self.resource.path, {**self.resource.params, "limit": 1})
        total = body.get("total_count") if isinstance(body, dict) else None
        return total if isinstance(total, int) else None

    async def _apply_page(self, items: list[dict[str, Any]]) -> None:
        built: list[Built] = []
        ids: list[str] = []
        for item in items:
            item_id = item.get("id")
            if isinstance(item_id, str):
                ids.append(item_id)  # it exists in Clerk, even if we cannot read it
            try:
                built.append(self.resource.build(item, self.row_options))
            except PayloadError as exc:
                self.report.invalid += 1
                log.warning(
                    "reconcile.invalid_object",
                    resource=self.resource.name,
                    id=item_id,
                    error=str(exc),
                )
        self.report.listed += len(items)
        if self.dry:
            self.seen_in_memory.update(ids)
            async with self.engine.connect() as conn:
                await self._classify(conn, built)
            return
        assert self.run_id is not None
        async with self.engine.begin() as conn:
            changed = await self._classify(conn, built)
            if changed:
                await self.resource.upsert(conn, changed)
            await checkpoints.add_seen(conn, self.run_id, self.resource.name, ids)
            await self._checkpoint(conn)  # the page, its seen ids and the cursor: all or none

    async def _classify(self, conn: AsyncConnection, built: Sequence[Built]) -> list[Built]:
        """Count created/updated/unchanged and keep only what the replica lacks: a nightly run
        over an unchanged instance writes nothing but its checkpoints."""
        table = self.resource.table
        stored: dict[str, Any] = {}
        ids = [main_row(b)["id"] for b in built]
        for start in range(0, len(ids), _CHUNK):
            result = await conn.execute(
                select(table.c.id, table.c.updated_at, table.c.deleted_at).where(
                    table.c.id.in_(ids[start : start + _CHUNK])
                )
            )
            stored.update({r.id: r for r in result})
        changed: list[Built] = []
        for b in built:
            row = main_row(b)
            held = stored.get(row["id"])
            if held is None:
                self.report.created += 1
                changed.append(b)
            elif _moves_forward(held, row):
                self.report.updated += 1
                changed.append(b)
            else:
                self.report.unchanged += 1
        return changed

    async def _detect_deletions(self) -> None:
        """Tombstone live rows Clerk no longer lists, after a complete listing only."""
        table = self.resource.table
        async with self.engine.connect() as conn:
            live = (
                await conn.execute(select(func.count()).where(table.c.deleted_at.is_(None)))
            ).scalar_one()
        missing = 0
        async for chunk in self._candidates():
            missing += len(chunk)
        share = int(live * self.settings.reconcile_max_delete_share)
        allowed = max(self.settings.reconcile_delete_floor, share)
        if missing > allowed and not self.options.force:
            self.report.status = "refused"
            self.report.error = (
                f"{missing} of {live} live {self.resource.name} are missing from Clerk, more "
                f"than the safety limit of {allowed}: nothing was tombstoned; rerun with --force "
                "if that is right"
            )
            # The next run lists again: a refusal must never be settled on a stale listing.
            self.listed = False
            self.position = Position()
            self.relist = True
            if not self.dry:
                assert self.run_id is not None
                async with self.engine.begin() as conn:
                    await checkpoints.clear_seen(conn, self.run_id, self.resource.name)
            return
        now = datetime.now(UTC)
        # Keyset by id: rows tombstoned meanwhile drop out, the scan still moves forward.
        async for chunk in self._candidates():
            await self._tombstone(chunk, now)

    async def _tombstone(self, rows: Sequence[dict[str, Any]], now: datetime) -> None:
        gone: list[tuple[str, datetime]] = []
        alive: list[Built] = []
        for row in rows:
            snapshot = (
                await self.resource.lookup(self.api, row)
                if self.options.confirm_deletions
                else None
            )
            if snapshot is None:
                gone.append((row["id"], now))
                continue
            try:  # the listing skipped it (offset drift): it is alive, store what Clerk has
                alive.append(self.resource.build(snapshot, self.row_options))
            except PayloadError:
                self.report.invalid += 1
        self.report.tombstoned += len(gone)
        if self.dry:
            return
        async with self.engine.begin() as conn:
            if gone:
                await self.resource.end(conn, gone)
            if alive:
                await self.resource.upsert(conn, alive)

    async def _candidates(self) -> AsyncIterator[list[dict[str, Any]]]:
        """Live rows created before the pass started that the listing did not return, by id."""
        table = self.resource.table
        columns = [table.c.id] + [
            table.c[c] for c in ("organization_id", "user_id") if c in table.c
        ]
        after = ""
        while True:
            stmt = (
                select(*columns)
                .where(
                    table.c.deleted_at.is_(None),
                    table.c.created_at < self.started_at,
                    table.c.id > after,
                )
                .order_by(table.c.id)
                .limit(_CHUNK)
            )
            if not self.dry:
                stmt = stmt.where(~_seen_exists(table, self.run_id, self.resource.name))
            async with self.engine.connect() as conn:
                rows = [dict(r._mapping) for r in await conn.execute(stmt)]
            if not rows:
                return
            after = rows[-1]["id"]
            if self.dry:
                rows = [r for r in rows if r["id"] not in self.seen_in_memory]
            if rows:
                yield rows


def _moves_forward(held: Any, row: Row) -> bool:
    """Whether the replica's upsert would change this row (ties are left alone: no write)."""
    if held.updated_at is not None and row["updated_at"] <= held.updated_at:
        return False
    deleted = held.deleted_at
    return deleted is None or row["created_at"] > deleted or row["updated_at"] <= deleted


def _seen_exists(table: Table, run_id: int | None, resource: str) -> Any:
    return (
        select(seen.c.object_id)
        .where(
            and_(
                seen.c.run_id == run_id,
                seen.c.resource == resource,
                seen.c.object_id == table.c.id,
            )
        )
        .exists()
    )
