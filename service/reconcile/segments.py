"""Splitting one of Clerk's lists into segments that are walked side by side: users into
`created_at` ranges (walked by cursor), the offset-only lists into offset windows.

Invariant: neighbouring segments overlap (a millisecond each side, a few objects), and the
first and last are unbounded, so whichever way Clerk reads the bounds nobody is missed; an
object read twice is written once. Why: docs/explanation/reconcile.md.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from service.kinds.declaration import Listing
from service.reconcile.clerk_api import ClerkAPI
from service.reconcile.paging import Position, objects_of

SEGMENTS_PER_WALKER = 4  # segments per request in flight, so the walkers balance each other
WINDOW_OVERLAP = 5  # objects an offset window reads of the window before it


@dataclass
class Segment:
    """One part of a list: an offset window [start, end) (end None: to the list's end), or
    created_at bounds in ms (None: unbounded); `position` is where its walk stands."""

    number: int
    start: int = 0
    end: int | None = None
    after_ms: int | None = None
    before_ms: int | None = None
    position: Position = field(default_factory=Position)
    done: bool = False

    def params(self) -> dict[str, Any]:
        """The filters that keep a walk inside the segment."""
        bounds: dict[str, Any] = {}
        if self.after_ms is not None:
            bounds["created_at_after"] = self.after_ms
        if self.before_ms is not None:
            bounds["created_at_before"] = self.before_ms
        return bounds


def whole() -> list[Segment]:
    """The list as one segment (one walk, as before segments)."""
    return [Segment(0)]


async def plan(
    api: ClerkAPI, listing: Listing, page_size: int, count: int | None, walkers: int
) -> list[Segment]:
    """Segments for `walkers` requests in flight; one segment when one walker, or a list of a
    page or two, would gain nothing from more."""
    if walkers <= 1 or count is None or count <= 2 * page_size:
        return whole()
    wanted = min(walkers * SEGMENTS_PER_WALKER, math.ceil(count / page_size))
    if listing.cursor:
        return await _time_ranges(api, listing, wanted)
    return offset_windows(count, page_size, wanted)


def offset_windows(count: int, page_size: int, wanted: int) -> list[Segment]:
    """`wanted` windows of whole pages over `count` objects (the last open-ended)."""
    pages = math.ceil(count / page_size)
    width = math.ceil(pages / wanted) * page_size
    starts = list(range(0, count, width))
    return [
        Segment(
            i,
            start=max(0, start - (WINDOW_OVERLAP if i else 0)),
            end=starts[i + 1] if i + 1 < len(starts) else None,
            position=Position(offset=max(0, start - (WINDOW_OVERLAP if i else 0))),
        )
        for i, start in enumerate(starts)
    ]


async def _time_ranges(api: ClerkAPI, listing: Listing, wanted: int) -> list[Segment]:
    """`wanted` equal created_at ranges between the oldest and the newest object."""
    oldest = await _edge(api, listing, "+created_at")
    newest = await _edge(api, listing, "-created_at")
    if oldest is None or newest is None or newest <= oldest:
        return whole()
    step = max(1, math.ceil((newest - oldest) / wanted))
    edges = list(range(oldest + step, newest + 1, step))[: wanted - 1]
    bounds = [None, *edges, None]
    return [
        Segment(
            i,
            after_ms=None if low is None else low - 1,
            before_ms=None if high is None else high + 1,
        )
        for i, (low, high) in enumerate(itertools.pairwise(bounds))
    ]


async def _edge(api: ClerkAPI, listing: Listing, order: str) -> int | None:
    """The created_at of the first object in `order`."""
    body = await api.get(listing.path, {**listing.params, "limit": 1, "order_by": order})
    items = objects_of(listing, body)
    if not items:
        return None
    created = items[0].get("created_at")
    return created if isinstance(created, int) and not isinstance(created, bool) else None
