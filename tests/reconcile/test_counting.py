"""Finding the created_at ranges whose counts differ, over in-memory counts: every deletion
ends up in a listed range, equal halves are dropped, and the requests grow with the
deletions times the log of the size."""

from __future__ import annotations

import bisect
import random

import pytest

from service.reconcile.counting import Count, Median, TooManyDiffer, differing_ranges

CUTOFF = 10_000_000


def sides(size: int, gone: set[int]) -> tuple[Count, Count, Median, list[int]]:
    """Clerk without `gone`, the replica with every row; created_at is the index; the list
    collects the ranges Clerk was asked to count."""
    replica = list(range(size))
    clerk = [i for i in replica if i not in gone]
    asked: list[int] = []

    def counter(values: list[int], charged: bool) -> Count:
        async def count(low: int | None, high: int) -> int:
            if charged:
                asked.append(high)
            start = 0 if low is None else bisect.bisect_left(values, low)
            return bisect.bisect_left(values, high) - start

        return count

    async def median(low: int | None, high: int, count: int) -> int | None:
        start = 0 if low is None else bisect.bisect_left(replica, low)
        mid = replica[start + count // 2]
        return mid if (low is None or mid > low) and mid < high else None

    return counter(clerk, True), counter(replica, False), median, asked


async def test_an_equal_count_costs_one_request_and_lists_nothing() -> None:
    clerk, replica, median, asked = sides(50_000, set())
    assert await differing_ranges(clerk, replica, median, CUTOFF, 500, 0.05) == []
    assert len(asked) == 1


@pytest.mark.parametrize("deletions", [1, 5, 40])
async def test_every_deletion_falls_in_a_small_listed_range(deletions: int) -> None:
    gone = set(random.Random(deletions).sample(range(50_000), deletions))
    clerk, replica, median, asked = sides(50_000, gone)
    ranges = await differing_ranges(clerk, replica, median, CUTOFF, 500, 0.05)
    for i in gone:
        assert any((low is None or low <= i) and i < high for low, high in ranges), i
    listed = sum(min(high, 50_000) - (low or 0) for low, high in ranges)  # rows
    assert listed <= deletions * 1500  # a page or so around each, not the instance
    assert len(asked) <= 1 + deletions * 8  # log2(50,000 / 500) levels at most each
    edges = [edge for low, high in ranges for edge in (low or 0, high)]
    assert edges == sorted(edges)  # in order, never overlapping


async def test_too_many_differing_is_refused() -> None:
    clerk, replica, median, _ = sides(1000, set(range(0, 1000, 10)))
    with pytest.raises(TooManyDiffer, match="100 of 1000 differ"):
        await differing_ranges(clerk, replica, median, CUTOFF, 500, 0.05)
