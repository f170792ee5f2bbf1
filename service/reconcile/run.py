"""One reconcile run of one instance: identify it (GET /instance), choose its mode (full or
incremental, service/reconcile/modes.py), then for each requested kind, parents first, a pass
(service/reconcile/kind_pass.py), under the instance's lease lock, recorded in the runs table
and resumable. Instances run independently: each has its own key,
rate limit, lock and runs; `run_reconciles` runs each configured instance in turn with this
process's own engine and API clients (the CLI and the nightly job)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.clerk.payloads import PayloadError
from service.config import DEFAULT_INSTANCE, Settings
from service.db.engine import create_engine
from service.db.errors import describe
from service.kinds.registry import BY_NAME
from service.logs import get_logger
from service.metrics import RECONCILE_OBJECTS, RECONCILE_REQUESTS
from service.reconcile import checkpoints, instance, modes
from service.reconcile.checkpoints import RunStatus
from service.reconcile.clerk_api import ClerkAPI, ClerkAuthError, ClerkError
from service.reconcile.kind_pass import KindPass
from service.reconcile.lock import LeaseLock
from service.reconcile.modes import ReconcileOptions, listed_kinds
from service.reconcile.report import PassReport, ProgressCallback, RunReport, no_progress

log = get_logger(__name__)

LOCK_NAME = "reconcile"


def lock_name(instance: str) -> str:
    """The lease lock of an instance's runs (the default instance keeps the plain name)."""
    return LOCK_NAME if instance == DEFAULT_INSTANCE else f"{LOCK_NAME}:{instance}"


async def reconcile(
    engine: AsyncEngine,
    api: ClerkAPI,
    settings: Settings,
    options: ReconcileOptions,
    on_progress: ProgressCallback = no_progress,
) -> RunReport:
    """Run (or resume) a reconcile of the instance `settings` speak for. Raises
    AlreadyRunning, or ClerkAuthError for a bad key."""
    names = [n for n in listed_kinds() if n in options.kinds]
    name = settings.instance_name
    bound = log.bind(instance=name)
    try:
        identity = await instance.identify(api, name)
    except Exception as exc:
        if not options.dry_run:  # a run that could not even start is a run that failed
            await _record_failed_start(engine, options, names, name, exc)
        raise
    if options.dry_run:
        async with engine.connect() as conn:
            choice = await modes.choose(
                conn, settings, names, full=options.full, now=datetime.now(UTC)
            )
        report = RunReport(run_id=None, dry_run=True, instance=name)
        report.mode, report.mode_reason = choice.mode, choice.reason
        await _passes(engine, api, settings, options, report, names, on_progress, identity, choice)
        return report

    lock = LeaseLock(engine, lock_name(name), settings.reconcile.lock_ttl_seconds)
    async with lock.held():
        async with engine.begin() as conn:
            await instance.record(conn, identity, settings.instance_ids())
            run_id, resumed = await checkpoints.open_run(
                conn,
                trigger=options.trigger,
                kinds=names,
                restart=options.restart,
                instance=name,
            )
            choice = await _choice(conn, settings, options, names, run_id, resumed)
            await checkpoints.set_mode(conn, run_id, choice.mode)
        report = RunReport(run_id=run_id, dry_run=False, resumed=resumed, instance=name)
        report.mode, report.mode_reason = choice.mode, choice.reason
        bound.info("reconcile.mode", run_id=run_id, mode=choice.mode, reason=choice.reason)
        error: str | None = None
        try:
            await _passes(
                engine, api, settings, options, report, names, on_progress, identity, choice
            )
        except ClerkAuthError as exc:
            error = str(exc)
            raise
        finally:
            failed = [p for p in report.passes if p.status != "completed"]
            error = error or "; ".join(f"{p.kind}: {p.error}" for p in failed) or None
            async with engine.begin() as conn:
                await checkpoints.finish_run(
                    conn,
                    run_id,
                    status=RunStatus.COMPLETED if report.ok else RunStatus.FAILED,
                    summary=report.summary(),
                    error=error,
                    mode=report.mode,
                )
            RECONCILE_REQUESTS.labels(name, report.mode).inc(report.requests)
            bound.info(
                "reconcile.finished",
                run_id=run_id,
                ok=report.ok,
                mode=report.mode,
                requests=report.requests,
                summary=report.summary(),
            )
    return report


async def _choice(
    conn: AsyncConnection,
    settings: Settings,
    options: ReconcileOptions,
    names: Sequence[str],
    run_id: int,
    resumed: bool,
) -> modes.Choice:
    """The run's mode: a resumed run keeps the one it recorded."""
    now = datetime.now(UTC)
    stored = await checkpoints.run_mode(conn, run_id) if resumed else None
    if resumed and stored != modes.Mode.INCREMENTAL:
        return modes.Choice(modes.Mode.FULL, "resuming a full run")
    found = await modes.choose(
        conn, settings, names, full=options.full, now=now, exclude_run=run_id
    )
    if resumed and found.mode is not modes.Mode.INCREMENTAL:
        return modes.Choice(modes.Mode.FULL, f"resuming, but {found.reason}")
    return found


async def _record_failed_start(
    engine: AsyncEngine,
    options: ReconcileOptions,
    names: Sequence[str],
    name: str,
    exc: Exception,
) -> None:
    error = f"GET /instance: {describe(exc)}"
    try:
        async with engine.begin() as conn:
            run_id = await checkpoints.record_failed_start(
                conn, trigger=options.trigger, kinds=names, instance=name, error=error
            )
    except Exception as failure:  # the database is down too: the original error is the news
        log.error("reconcile.not_recorded", instance=name, error=describe(failure))
        return
    log.error("reconcile.finished", instance=name, run_id=run_id, ok=False, error=error)


async def _passes(
    engine: AsyncEngine,
    api: ClerkAPI,
    settings: Settings,
    options: ReconcileOptions,
    report: RunReport,
    names: Sequence[str],
    on_progress: ProgressCallback,
    identity: instance.Identity,
    choice: modes.Choice,
) -> None:
    since = choice.since if choice.mode is modes.Mode.INCREMENTAL else None
    counts: dict[str, dict[str, int]] = {}  # children per parent, as listed in this run
    for name in names:
        pass_report = PassReport(kind=name)
        report.passes.append(pass_report)
        runner = KindPass(
            engine,
            api,
            settings,
            options,
            report.run_id,
            BY_NAME[name],
            pass_report,
            identity,
            since=since,
            counts=counts,
        )
        started, before = time.monotonic(), (api.stats.requests, api.stats.throttled)
        api.stats.peak_in_flight = api.stats.in_flight
        try:
            await runner.run(on_progress)
        except ClerkAuthError:
            pass_report.status, pass_report.error = "failed", "Clerk rejected the key"
            raise
        except (ClerkError, PayloadError) as exc:
            pass_report.status, pass_report.error = "failed", str(exc)
            log.error(
                "reconcile.pass_failed",
                instance=settings.instance_name,
                kind=name,
                error=str(exc),
            )
        finally:
            if not options.dry_run:  # only what this process wrote, not what a resume restored
                for change in ("created", "updated", "tombstoned"):
                    done = getattr(pass_report, change) - runner.restored.get(change, 0)
                    RECONCILE_OBJECTS.labels(settings.instance_name, name, change).inc(max(0, done))
            pass_report.requests += api.stats.requests - before[0]
            pass_report.throttled += api.stats.throttled - before[1]
            pass_report.in_flight = max(pass_report.in_flight, api.stats.peak_in_flight)
            pass_report.seconds += round(time.monotonic() - started, 3)
            await runner.save(done=pass_report.status == "completed")
            if runner.escalated and since is not None:
                # Counting found too much differing: the rest of the run lists everything.
                since, report.mode = None, modes.Mode.FULL
                report.mode_reason = f"{name}: too many differ by count"
                if report.run_id is not None:
                    async with engine.begin() as conn:
                        await checkpoints.set_mode(conn, report.run_id, modes.Mode.FULL)


async def run_reconcile(
    settings: Settings,
    options: ReconcileOptions,
    on_progress: ProgressCallback = no_progress,
) -> RunReport:
    """Reconcile the instance `settings` speak for (`Settings.for_instance`)."""
    engine = create_engine(settings)
    api = ClerkAPI(settings)
    try:
        return await reconcile(engine, api, settings, options, on_progress)
    finally:
        await api.close()
        await engine.dispose()


async def run_reconciles(
    settings: Settings,
    options: ReconcileOptions,
    on_progress: ProgressCallback = no_progress,
    instances: Sequence[str] = (),
) -> list[RunReport]:
    """Reconcile the named instances (none named: every configured one), one after another:
    a failure of one (a bad key, a lock held) is raised only after the others have run."""
    names = list(instances) or settings.instance_names()
    reports: list[RunReport] = []
    failure: Exception | None = None
    for name in names:
        try:
            reports.append(await run_reconcile(settings.for_instance(name), options, on_progress))
        except Exception as exc:
            log.error("reconcile.instance_failed", instance=name, error=str(exc))
            failure = failure or exc
    if failure is not None:
        raise failure
    return reports
