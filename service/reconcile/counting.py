"""Where two sets of objects differ, found by counting: the created_at ranges in which
Clerk's count and the replica's differ, split at the replica's median until listing a range
costs no more than splitting it further. Requests grow with the differences times the log of
the size, not with the size (docs/explanation/reconcile-modes.md)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

Count = Callable[[int | None, int], Awaitable[int]]
Median = Callable[[int | None, int, int], Awaitable[int | None]]


class TooManyDiffer(Exception):
    """More differ than the share allows: listing everything is as cheap, and safer."""


async def differing_ranges(
    clerk: Count, replica: Count, median: Median, cutoff: int, page_size: int, share: float
) -> list[tuple[int | None, int]]:
    """The created_at ranges [low, high) ms, before `cutoff`, to list: their counts differ,
    and splitting them further (one count each) would cost more than listing them.

    `clerk` and `replica` count a range; `median` is the replica's middle created_at in a
    range, strictly inside it (None: the range cannot be split). Raises TooManyDiffer when
    more than `share` of the replica's rows differ by count.
    """
    clerk_total, replica_total = await clerk(None, cutoff), await replica(None, cutoff)
    if abs(clerk_total - replica_total) > share * max(replica_total, 1):
        raise TooManyDiffer(f"{abs(clerk_total - replica_total)} of {replica_total} differ")
    ranges: list[tuple[int | None, int, int, int]] = [(None, cutoff, clerk_total, replica_total)]
    listed: list[tuple[int | None, int]] = []
    while ranges:
        low, high, c, r = ranges.pop()
        if c == r:
            continue
        mid = None
        if math.ceil(max(c, r, 1) / page_size) > abs(c - r) + 1:  # listing costs more
            mid = await median(low, high, r)
        if mid is None:
            listed.append((low, high))
            continue
        c_low, r_low = await clerk(low, mid), await replica(low, mid)
        ranges += [(mid, high, c - c_low, r - r_low), (low, mid, c_low, r_low)]
    return sorted(listed, key=lambda edge: edge[1])
