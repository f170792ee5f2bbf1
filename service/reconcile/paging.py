"""Paging through one of Clerk's lists, in created_at order, resumable from a position."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from service.kinds.declaration import Listing
from service.reconcile.clerk_api import ClerkAPI, ClerkRequestError


@dataclass
class Position:
    """Where a pass stands: items listed so far, and the cursor (the last id listed).

    `cursor` is None once a pass has fallen back to offsets, so a resumed pass keeps paging
    by offset instead of sending a cursor the API ignores.
    """

    offset: int = 0
    cursor: str | None = None
    use_cursor: bool = True

    @classmethod
    def restore(cls, offset: int, cursor: str | None) -> Position:
        return cls(offset=offset, cursor=cursor, use_cursor=cursor is not None or offset == 0)


async def pages(
    api: ClerkAPI,
    listing: Listing,
    page_size: int,
    position: Position,
    total: int | None = None,
    *,
    bounds: dict[str, Any] | None = None,
    end: int | None = None,
    newest_first: bool = False,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Yield pages in created_at order (`newest_first`: the newest first), advancing `position`
    after each one; `bounds`: filters keeping the walk in a segment, `end`: the offset at which
    a window's walk stops.

    Lists that take a cursor page by `starting_after` (Clerk's advice for deep lists); if the
    API rejects or ignores it we fall back to offsets. Everything else pages by offset.
    The walk ends at a short page, and also, against an API that would page forever, at a
    page that brings no id the page before did not, or once the offset has passed `total`.
    """
    previous: set[Any] = set()
    while True:
        # A window's last page asks only for what is left of it.
        limit = page_size if end is None else max(1, min(page_size, end - position.offset))
        params: dict[str, Any] = {**listing.params, **(bounds or {}), "limit": limit}
        if listing.ordered:
            params["order_by"] = "-created_at" if newest_first else "+created_at"
        cursor_mode = listing.cursor and position.use_cursor and position.cursor is not None
        if cursor_mode:
            params["starting_after"] = position.cursor
        else:
            params["offset"] = position.offset
        try:
            body = await api.get(listing.path, params)
        except ClerkRequestError:
            # Rejected (422), or the cursor's object is gone (404 and the like): use offsets.
            # Auth errors and 429s never get here as ClerkRequestError.
            if cursor_mode:
                position.use_cursor, position.cursor = False, None
                continue
            raise
        items = objects_of(listing, body)
        if cursor_mode and any(i.get("id") == position.cursor for i in items):
            position.use_cursor, position.cursor = False, None  # starting_after was ignored
            continue
        ids = {i.get("id") for i in items}
        if items and ids <= previous:
            return  # the same page again: the API ignores where we asked to start
        previous = ids
        position.offset += len(items)
        if (
            listing.cursor
            and position.use_cursor
            and items
            and isinstance(items[-1].get("id"), str)
        ):
            position.cursor = items[-1]["id"]
        yield items
        if len(items) < limit or (total is not None and position.offset > total):
            return
        if end is not None and position.offset >= end:
            return


def objects_of(listing: Listing, body: Any) -> list[dict[str, Any]]:
    """The objects of one answer of `listing` (a bare array, or `{data, total_count}`)."""
    items = body if listing.bare_array else body.get("data") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise ClerkRequestError(f"unexpected list shape from {listing.path}", 200)
    return [i for i in items if isinstance(i, dict)]


async def total(api: ClerkAPI, listing: Listing) -> int | None:
    """How many objects the list holds, when Clerk says."""
    if listing.count_path is not None:
        body = await api.get(listing.count_path)
    else:
        body = await api.get(listing.path, {**listing.params, "limit": 1})
    count = body.get("total_count") if isinstance(body, dict) else None
    return count if isinstance(count, int) else None
