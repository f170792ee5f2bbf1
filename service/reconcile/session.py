"""A reconcile with this process's own engine and API client (the CLI and the nightly job)."""

from __future__ import annotations

from service.config import Settings
from service.db.engine import create_engine
from service.reconcile.clerk_api import ClerkAPI
from service.reconcile.options import ReconcileOptions
from service.reconcile.report import ProgressCallback, RunReport, no_progress
from service.reconcile.run import reconcile


async def run_reconcile(
    settings: Settings,
    options: ReconcileOptions,
    on_progress: ProgressCallback = no_progress,
) -> RunReport:
    engine = create_engine(settings)
    api = ClerkAPI(settings)
    try:
        return await reconcile(engine, api, settings, options, on_progress)
    finally:
        await api.close()
        await engine.dispose()
