"""Running a reconcile in a test and reading what it left behind."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.reconcile.checkpoints import progress
from service.reconcile.clerk_api import ClerkAPI
from service.reconcile.modes import ReconcileOptions
from service.reconcile.report import RunReport
from service.reconcile.run import reconcile
from tests.support.replica_helpers import rows


async def run(engine: AsyncEngine, api: ClerkAPI, settings: Settings, **options: Any) -> RunReport:
    return await reconcile(engine, api, settings, ReconcileOptions(**options))


def by_kind(report: RunReport) -> dict[str, Any]:
    return {p.kind: p for p in report.passes}


async def checkpoint_reaches(engine: AsyncEngine, offset: int) -> None:
    """Wait until the run's checkpoint stands at `offset`: the next page is fetched while
    the current one is written, so a page in flight does not mean the one before is saved."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            saved = (await conn.execute(select(progress.c.offset))).scalar()
        if saved is not None and saved >= offset:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the checkpoint never reached {offset}")


async def live(engine: AsyncEngine, table: Any) -> list[str]:
    return [r["id"] for r in await rows(engine, table) if r["deleted_at"] is None]
