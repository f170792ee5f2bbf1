"""Reconciles with this process's own engine and API clients (the CLI and the nightly job):
one instance, or each configured instance in turn."""

from __future__ import annotations

from collections.abc import Sequence

from service.config import Settings
from service.db.engine import create_engine
from service.logs import get_logger
from service.reconcile.clerk_api import ClerkAPI
from service.reconcile.options import ReconcileOptions
from service.reconcile.report import ProgressCallback, RunReport, no_progress
from service.reconcile.run import reconcile

log = get_logger(__name__)


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
