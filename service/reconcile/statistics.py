"""Planner statistics kept fresh while a backfill grows tables from (nearly) empty.

Autovacuum analyzes at most once a minute, and a prepared statement's generic plan is chosen
once: planned while a table was empty, `user_id IN (...)` stays a sequential scan and each page
costs more than the one before. ANALYZE whenever the rows created since the last one outnumber
the rows known then (a handful of times for a large first run) replaces the stale plans; a
nightly run over an unchanged instance creates nothing and analyzes only before deletion
detection. Where the database keeps no such statistics, this does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.dialect import dialect_of
from service.logs import get_logger

log = get_logger(__name__)

_ANALYZE_FLOOR = 1000  # rows created before the first ANALYZE of a pass
# A quick ANALYZE samples a tenth of the default: enough for the row counts and key columns
# that choose index scans while a table grows. The pass ends with a full one.
_QUICK_SAMPLE_TARGET = 10


class Statistics:
    def __init__(self, engine: AsyncEngine, tables: Sequence[Table]) -> None:
        self.engine, self.tables = engine, tables
        self.dialect = dialect_of(engine)
        self.enabled = self.dialect.statistics
        self.known: float | None = None
        self.created = 0

    async def grew(self, created: int) -> None:
        """Count rows created; ANALYZE (quickly) once they outnumber the rows known."""
        if not self.enabled or not created:
            return
        self.created += created
        if self.known is None:
            async with self.engine.connect() as conn:
                self.known = await self.dialect.row_estimate(conn, self.tables[0])
        if self.created < max(_ANALYZE_FLOOR, self.known):
            return
        await self.analyze(self.tables, quick=True)
        self.known += self.created
        self.created = 0

    async def analyze(self, tables: Sequence[Table], *, quick: bool = False) -> None:
        """ANALYZE the tables; `quick` on a small sample, so as not to block the pipeline."""
        if not self.enabled:
            return
        try:
            async with self.engine.begin() as conn:
                await self.dialect.analyze(
                    conn, tables, sample_target=_QUICK_SAMPLE_TARGET if quick else None
                )
        except DBAPIError as exc:  # not the tables' owner: slower, still correct
            names = ", ".join(t.name for t in tables)
            log.warning("reconcile.analyze_failed", tables=names, error=str(exc.orig))
            self.enabled = False
