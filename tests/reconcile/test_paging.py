"""Paging Clerk's lists over real HTTP: by cursor, falling back to offsets, and the totals."""

from __future__ import annotations

from typing import Any

import pytest

from service.kinds.declaration import Listing
from service.kinds.registry import kind
from service.reconcile.clerk_api import ClerkAPI, ClerkRequestError
from service.reconcile.paging import Position, pages, total
from tests.support import clerk_payloads as cp
from tests.support.fake_clerk import FakeClerk


def listing_of(name: str) -> Listing:
    listing = kind(name).listing
    assert listing is not None
    return listing


USERS, ORGS = listing_of("users"), listing_of("organizations")


@pytest.fixture
def fake() -> FakeClerk:
    return FakeClerk(
        users=[cp.user(f"user_{n}", created_at=cp.T0 + n) for n in range(7)],
        organizations=[cp.organization(f"org_{n}", created_at=cp.T0 + n) for n in range(6)],
    )


@pytest.fixture
async def api(quick_api: ClerkAPI) -> ClerkAPI:
    return quick_api  # no database needed: SQLite settings, few retries


async def listed(api: ClerkAPI, listing: Listing, size: int, at: Position) -> list[list[str]]:
    return [[i["id"] for i in page] async for page in pages(api, listing, size, at)]


def sent(fake: FakeClerk, path: str) -> list[dict[str, Any]]:
    return [r.params for r in fake.requests_to(path)]


async def test_users_page_by_cursor_after_the_first_page(api: ClerkAPI, fake: FakeClerk) -> None:
    position = Position()
    found = await listed(api, USERS, 3, position)
    assert found == [["user_0", "user_1", "user_2"], ["user_3", "user_4", "user_5"], ["user_6"]]
    params = sent(fake, "users")
    assert [p.get("starting_after") for p in params] == [None, "user_2", "user_5"]
    assert params[0]["offset"] == "0" and all(p["order_by"] == "+created_at" for p in params)
    assert (position.offset, position.cursor, position.use_cursor) == (7, "user_6", True)


async def test_an_ignored_cursor_falls_back_to_offsets(api: ClerkAPI, fake: FakeClerk) -> None:
    fake.supports_cursor = False
    position = Position()
    found = await listed(api, USERS, 3, position)
    assert [i for page in found for i in page] == [f"user_{n}" for n in range(7)]
    offsets = [p.get("offset") for p in sent(fake, "users")]
    assert offsets == ["0", None, "3", "6"]  # the cursor's answer repeated a page: dropped
    assert (position.cursor, position.use_cursor) == (None, False)


async def test_a_refused_cursor_falls_back_to_offsets(api: ClerkAPI, fake: FakeClerk) -> None:
    position = Position.restore(offset=3, cursor="user_deleted_since")
    assert position.use_cursor
    assert await listed(api, USERS, 3, position) == [["user_3", "user_4", "user_5"], ["user_6"]]
    assert [p.get("offset") for p in sent(fake, "users")] == [None, "3", "6"]


async def test_a_resumed_offset_pass_stays_on_offsets(api: ClerkAPI, fake: FakeClerk) -> None:
    position = Position.restore(offset=6, cursor=None)
    assert not position.use_cursor
    assert await listed(api, USERS, 3, position) == [["user_6"]]
    assert "starting_after" not in sent(fake, "users")[0]


async def test_lists_without_a_cursor_page_by_offset(api: ClerkAPI, fake: FakeClerk) -> None:
    position = Position()
    found = await listed(api, ORGS, 3, position)
    assert found == [["org_0", "org_1", "org_2"], ["org_3", "org_4", "org_5"], []]
    params = sent(fake, "organizations")
    assert [p["offset"] for p in params] == ["0", "3", "6"]
    assert all(p["include_members_count"] == "true" for p in params)
    assert (position.offset, position.cursor) == (6, None)


async def test_a_list_of_the_wrong_shape_is_an_error(api: ClerkAPI) -> None:
    bare = Listing("organizations", bare_array=True)  # {data, total_count} is not an array
    with pytest.raises(ClerkRequestError, match="unexpected list shape"):
        await listed(api, bare, 3, Position())


async def test_totals(api: ClerkAPI, fake: FakeClerk) -> None:
    assert await total(api, USERS) == 7
    assert len(fake.requests_to("users/count")) == 1 and fake.requests_to("users") == []
    assert await total(api, ORGS) == 6
    assert sent(fake, "organizations")[0]["limit"] == "1"
    assert await total(api, Listing("users")) is None  # a bare array carries no count
