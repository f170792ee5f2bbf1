"""A kind's pass as its steps see it: the page it lists and writes, and the state and actions
of the pass (service/reconcile/kind_pass.py) that the walk, the incremental listing and
deletion detection use. Those steps take a `PassView`, so none of them imports the pass that
calls them."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.clerk.rows import RowOptions, Snapshot
from service.config import Settings
from service.kinds.declaration import Kind, Listing
from service.reconcile.clerk_api import ClerkAPI
from service.reconcile.modes import ReconcileOptions
from service.reconcile.paging import Position
from service.reconcile.report import PassReport
from service.reconcile.segments import Segment
from service.reconcile.statistics import Statistics
from service.replica.bulk import Encoded


@dataclass
class Page:
    """One listed page: its objects as Clerk sent them until the writer builds them, and where
    its segment stands after it."""

    listed: int
    segment: Segment
    after: Position
    ends_segment: bool = False  # the segment's walk is over once this page is written
    items: list[dict[str, Any]] = field(default_factory=list)  # emptied once built
    ids: list[str] = field(default_factory=list)
    built: list[Snapshot] = field(default_factory=list)
    encoded: Encoded | None = None  # `built`, encoded for COPY ahead of the write
    invalid: int = 0


class PassView(Protocol):
    """What a step reads and calls of the pass it serves (meanings: kind_pass.py)."""

    engine: AsyncEngine
    api: ClerkAPI
    settings: Settings
    options: ReconcileOptions
    run_id: int | None
    kind: Kind
    report: PassReport
    instance_id: str
    listing: Listing
    started_at: datetime
    row_options: RowOptions
    segments: list[Segment]
    walkers: int
    listed: bool
    relist: bool
    seen_in_memory: set[str]
    statistics: Statistics
    counts: dict[str, dict[str, int]]
    count_column: str | None

    @property
    def dry(self) -> bool: ...

    def attributed(self, conn: AsyncConnection) -> AbstractAsyncContextManager[None]: ...

    def owned(self, table: Table) -> ColumnElement[bool]: ...

    def build(self, item: dict[str, Any]) -> Snapshot | None: ...

    async def build_page(self, page: Page) -> None: ...

    async def apply_page(self, page: Page, after: asyncio.Task[None] | None) -> None: ...
