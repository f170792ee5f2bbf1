"""Incremental runs against the fake Clerk API, on PostgreSQL and SQLite: after a complete run,
what webhooks missed (user updates, creations and deletions, membership creations and
deletions, organization renames) is repaired by one incremental run at a fraction of the
requests; what it cannot see, the full run repairs; a run killed midway ends nothing Clerk has."""

from __future__ import annotations

import asyncio
import bisect
import random
import threading
import time
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.reconcile.clerk_api import ClerkAPI
from service.reconcile.incremental import Count, Median, TooManyDiffer, differing_ranges
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.fake_clerk import FakeClerk
from tests.support.reconciling import by_kind, live, run
from tests.support.replica_helpers import one


def now_ms() -> int:
    return int(time.time() * 1000)


def new_user(n: int, at: int) -> dict[str, Any]:
    return cp.user(
        f"user_new{n}",
        created_at=at,
        updated_at=at,
        emails=[cp.email(f"idn_new{n}", f"new{n}@example.org")],
    )


async def test_missed_user_changes_are_repaired_by_one_incremental_run(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    settings = rsettings.updated(reconcile_page_size=10)  # counting pays here
    first = await run(engine, api, settings, kinds=("users",))
    assert first.ok and first.mode == "full"
    full_requests = by_kind(first)["users"].requests

    unchanged = await run(engine, api, settings, kinds=("users",))
    users = by_kind(unchanged)["users"]
    assert unchanged.ok and unchanged.mode == "incremental" and users.mode == "incremental"
    assert (users.created, users.updated, users.tombstoned) == (0, 0, 0)
    assert users.requests == 2 < full_requests  # one page of the recently updated, one count

    at = now_ms()
    fake.users[3] = {**fake.users[3], "first_name": "Renamed", "updated_at": at}
    fake.users.append(new_user(1, at))
    for gone in ("user_00007", "user_00093"):  # deleted without a webhook
        fake.delete("users", gone)

    report = await run(engine, api, settings, kinds=("users",))
    users = by_kind(report)["users"]
    assert report.ok and report.mode == "incremental", report.summary()
    assert (users.created, users.updated, users.tombstoned) == (1, 1, 2)
    assert sorted(await live(engine, t.users)) == sorted(u["id"] for u in fake.users)
    assert (await one(engine, t.users, "user_00003"))["first_name"] == "Renamed"
    # Only the ranges whose counts differ are listed, not the 119 users (12 pages).
    listed = [r for r in fake.requests_to("users") if "created_at_before" in r.params]
    assert 0 < len(listed) <= 4


async def test_missed_membership_changes_and_renames_are_repaired(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    both = ("organizations", "memberships")
    await run(engine, api, rsettings, kinds=both)
    at = now_ms()
    fake.memberships.append(
        cp.membership("orgmem_added", org_id="org_0003", user_id="user_00099", created_at=at)
    )
    fake.delete("memberships", "orgmem_0005_002")
    renamed = next(o for o in fake.organizations if o["id"] == "org_0008")
    renamed.update(name="Renamed Inc", updated_at=at)
    before = len(fake.log)

    report = await run(engine, api, rsettings, kinds=both)
    assert report.ok and report.mode == "incremental", report.summary()
    organizations, memberships = by_kind(report)["organizations"], by_kind(report)["memberships"]
    assert organizations.updated == 1
    assert (await one(engine, t.organizations, "org_0008"))["name"] == "Renamed Inc"
    assert (memberships.created, memberships.tombstoned) == (1, 1)
    assert sorted(await live(engine, t.organization_memberships)) == sorted(
        m["id"] for m in fake.memberships
    )
    # The newest created, one page; then memberships listed only for the organizations whose
    # count still differs, or that changed.
    newest = [r.params for r in fake.log[before:] if r.path.endswith("/organization_memberships")]
    assert [(p["order_by"], p["offset"]) for p in newest] == [("-created_at", "0")]
    listed = {
        r.path.split("/")[3]
        for r in fake.log[before:]
        if r.path.endswith("/memberships") and "user_id" not in r.params
    }
    assert listed == {"org_0005", "org_0008"}
    # org_0005's members came in one answer, which confirms orgmem_0005_002 gone: no lookup.
    lookups = [r for r in fake.log[before:] if "user_id" in r.params]
    assert lookups == []


async def test_a_membership_missing_from_a_list_of_several_pages_is_looked_up(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    """A deletion while an organization's members are paged shifts one past the walk: its
    absence proves nothing, and the lookup finds it alive; it is not ended."""
    settings = rsettings.updated(reconcile_page_size=2)
    both = ("organizations", "memberships")
    await run(engine, api, settings, kinds=both)
    fake.delete("memberships", "orgmem_0005_004")  # the count differs: org_0005 is listed

    def delete_during_walk(name: str, params: dict[str, str]) -> None:
        if name == "organizations/org_0005/memberships" and params.get("offset") == "2":
            fake.delete("memberships", "orgmem_0005_000")  # 002 slides back to offset 1

    fake.on_list = delete_during_walk
    before = len(fake.log)
    report = await run(engine, api, settings, kinds=both)
    assert report.ok and report.mode == "incremental", report.summary()
    assert (await one(engine, t.organization_memberships, "orgmem_0005_002"))["deleted_at"] is None
    assert (await one(engine, t.organization_memberships, "orgmem_0005_004"))["deleted_at"]
    looked_up = sorted(r.params["user_id"] for r in fake.log[before:] if "user_id" in r.params)
    assert looked_up == ["user_00027", "user_00029"]  # 002's and 004's members


async def test_what_only_the_full_run_sees_it_repairs(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    await run(engine, api, rsettings)
    # A role changed with the counts equal; one member swapped for another; an old update.
    fake.memberships[0] = {**fake.memberships[0], "role": "org:admin", "updated_at": now_ms()}
    swapped = fake.memberships[6]
    fake.delete("memberships", swapped["id"])
    fake.memberships.append(
        cp.membership("orgmem_swap", org_id=swapped["organization"]["id"], user_id="user_00110")
    )
    fake.users[9] = {**fake.users[9], "first_name": "Backdated", "updated_at": cp.T0 + 9_999}

    nightly = await run(engine, api, rsettings)
    assert nightly.ok and nightly.mode == "incremental"
    assert (await one(engine, t.organization_memberships, fake.memberships[0]["id"]))[
        "role"
    ] == "org:member"
    assert (await one(engine, t.organization_memberships, swapped["id"]))["deleted_at"] is None
    assert (await one(engine, t.users, "user_00009"))["first_name"] != "Backdated"

    full = await run(engine, api, rsettings, full=True)
    assert full.ok and full.mode == "full" and full.mode_reason == "asked for (--full)"
    assert (await one(engine, t.organization_memberships, fake.memberships[0]["id"]))[
        "role"
    ] == "org:admin"
    assert (await one(engine, t.organization_memberships, swapped["id"]))["deleted_at"]
    assert (await one(engine, t.organization_memberships, "orgmem_swap"))["deleted_at"] is None
    assert (await one(engine, t.users, "user_00009"))["first_name"] == "Backdated"


async def test_many_differing_by_count_turns_the_run_full(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    await run(engine, api, rsettings, kinds=("users", "memberships"))
    for n in range(8):  # more than RECONCILE_FULL_WHEN_DIFFERING_SHARE of 120
        fake.delete("users", f"user_{10 * n:05d}")
    report = await run(engine, api, rsettings, kinds=("users", "memberships"))
    assert report.ok and report.mode == "full", report.summary()
    assert by_kind(report)["users"].mode == by_kind(report)["memberships"].mode == "full"
    assert by_kind(report)["users"].tombstoned == 8
    assert fake.requests_to("organization_memberships")  # the rest of the run listed whole


async def test_a_run_killed_midway_ends_nothing_clerk_still_has(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    settings = rsettings.updated(reconcile_page_size=10)
    await run(engine, api, settings, kinds=("users",))
    fake.delete("users", "user_00042")
    listing_a_range = threading.Event()

    def hold_range_listing(name: str, params: dict[str, str]) -> None:
        if name == "users" and "created_at_before" in params:
            listing_a_range.set()
            time.sleep(0.3)  # the answer is still on its way when the process dies

    fake.on_list = hold_range_listing
    killed = asyncio.create_task(run(engine, api, settings, kinds=("users",)))
    assert await asyncio.to_thread(listing_a_range.wait, 10)
    killed.cancel()
    await asyncio.gather(killed, return_exceptions=True)
    kept = sorted([*(u["id"] for u in fake.users), "user_00042"])
    assert sorted(await live(engine, t.users)) == kept

    fake.on_list = None
    resumed = await run(engine, api, settings, kinds=("users",))
    assert resumed.ok and resumed.resumed and resumed.mode == "incremental"
    assert by_kind(resumed)["users"].tombstoned == 1
    assert sorted(await live(engine, t.users)) == sorted(u["id"] for u in fake.users)


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
