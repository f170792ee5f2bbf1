"""Splitting a list into segments: offset windows that cover every offset and overlap a little,
created_at ranges between the oldest and newest user that overlap at their edges."""

from __future__ import annotations

import itertools

import pytest

from service.kinds.declaration import Listing
from service.kinds.registry import KINDS
from service.reconcile.clerk_api import ClerkAPI
from service.reconcile.segments import WINDOW_OVERLAP, offset_windows, plan
from tests.support import clerk_payloads as cp
from tests.support.fake_clerk import FakeClerk


def listing(name: str) -> Listing:
    found = next(k.listing for k in KINDS if k.name == name)
    assert found is not None
    return found


USERS, ORGANIZATIONS = listing("users"), listing("organizations")


@pytest.fixture
def fake() -> FakeClerk:
    fake = FakeClerk()
    fake.users = [cp.user(f"user_{i:04d}", created_at=cp.T0 + 10 * i) for i in range(400)]
    return fake


def test_offset_windows_cover_every_offset_in_whole_pages_and_overlap() -> None:
    windows = offset_windows(count=1_030, page_size=100, wanted=4)
    assert [(w.start, w.end) for w in windows] == [
        (0, 300),
        (300 - WINDOW_OVERLAP, 600),
        (600 - WINDOW_OVERLAP, 900),
        (900 - WINDOW_OVERLAP, None),  # the last is open: objects created meanwhile
    ]
    assert [w.position.offset for w in windows] == [w.start for w in windows]


async def test_one_walker_or_a_short_list_is_one_segment(quick_api: ClerkAPI) -> None:
    assert len(await plan(quick_api, ORGANIZATIONS, 100, 10_000, walkers=1)) == 1
    assert len(await plan(quick_api, ORGANIZATIONS, 100, 150, walkers=8)) == 1
    assert len(await plan(quick_api, ORGANIZATIONS, 100, None, walkers=8)) == 1  # no total
    # 32 wanted (4 per walker), in whole pages: 25 windows of 4 pages.
    assert len(await plan(quick_api, ORGANIZATIONS, 100, 10_000, walkers=8)) == 25


async def test_users_split_into_overlapping_created_at_ranges(quick_api: ClerkAPI) -> None:
    ranges = await plan(quick_api, USERS, 50, 400, walkers=2)
    assert len(ranges) == 8
    assert ranges[0].after_ms is None and ranges[-1].before_ms is None  # open at both ends
    for low, high in itertools.pairwise(ranges):
        assert high.after_ms is not None and low.before_ms is not None
        # Neighbours share two milliseconds: whether a bound is inclusive or not, the user
        # created on an edge is inside one of them.
        assert low.before_ms - high.after_ms == 2
    assert ranges[1].params() == {
        "created_at_after": ranges[1].after_ms,
        "created_at_before": ranges[1].before_ms,
    }
