"""The resource types reconcile walks: where Clerk lists them, how they page, and which
replica writes and single-object lookups they use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from service.apply import rows
from service.apply.rows import Row, RowOptions, UserRows
from service.reconcile.clerk_api import ClerkAPI, ClerkRequestError
from service.replica import bulk, writes
from service.replica import tables as t

Built = Any  # a Row, or UserRows for users


@dataclass(frozen=True)
class Resource:
    name: str
    table: Table
    path: str
    build: Callable[[dict[str, Any], RowOptions], Built]
    upsert: Callable[[AsyncConnection, Sequence[Built]], Awaitable[set[str]]]
    end: Callable[[AsyncConnection, Sequence[tuple[str, datetime]]], Awaitable[None]]
    lookup: Callable[[ClerkAPI, dict[str, Any]], Awaitable[dict[str, Any] | None]]
    # Writes objects the replica has no row for, faster than `upsert`; False when it could not
    # (then `upsert` writes them). Only for objects without parents: a child's upsert checks
    # its parents' tombstones and settles live pairs, which a plain insert would skip.
    create: Callable[[AsyncConnection, Sequence[Built]], Awaitable[bool]] | None = None
    bare_array: bool = False  # GET /users answers a bare array, the others {data, total_count}
    cursor: bool = False  # supports starting_after
    params: dict[str, Any] = field(default_factory=dict)


def main_row(built: Built) -> Row:
    return built.user if isinstance(built, UserRows) else built


async def _lookup_path(api: ClerkAPI, path: str) -> dict[str, Any] | None:
    found = await api.get_or_none(path)
    return found if isinstance(found, dict) else None


async def _find_in_list(
    api: ClerkAPI, path: str, params: dict[str, Any], object_id: str
) -> dict[str, Any] | None:
    """The object with `object_id` in a list, or None (also when the list's owner is gone)."""
    found = await api.get_or_none(path, params)
    for item in found.get("data", []) if isinstance(found, dict) else []:
        if isinstance(item, dict) and item.get("id") == object_id:
            return item
    return None


async def _lookup_membership(api: ClerkAPI, row: dict[str, Any]) -> dict[str, Any] | None:
    # No endpoint reads a membership by id: list the organization's memberships of that user.
    path = f"organizations/{row['organization_id']}/memberships"
    return await _find_in_list(api, path, {"user_id": row["user_id"], "limit": 10}, row["id"])


async def _lookup_domain(api: ClerkAPI, row: dict[str, Any]) -> dict[str, Any] | None:
    # Clerk has no GET for one domain: list the organization's domains and look for the id.
    if not row.get("organization_id"):
        return None
    path = f"organizations/{row['organization_id']}/domains"
    return await _find_in_list(api, path, {"limit": 500}, row["id"])


# Parents first, so children see their parents' tombstones.
RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in (
        Resource(
            name="organizations",
            table=t.organizations,
            path="organizations",
            params={"include_members_count": "true"},
            build=rows.organization_row,
            upsert=writes.upsert_organizations,
            create=lambda conn, built: bulk.insert_new(conn, t.organizations, built),
            end=writes.delete_organizations,
            lookup=lambda api, row: _lookup_path(api, f"organizations/{row['id']}"),
        ),
        Resource(
            name="users",
            table=t.users,
            path="users",
            bare_array=True,
            cursor=True,
            build=rows.user_rows,
            upsert=writes.upsert_users,
            create=bulk.insert_new_users,
            end=writes.delete_users,
            lookup=lambda api, row: _lookup_path(api, f"users/{row['id']}"),
        ),
        Resource(
            name="memberships",
            table=t.organization_memberships,
            path="organization_memberships",
            build=rows.membership_row,
            upsert=writes.upsert_memberships,
            end=lambda conn, items: writes.end_rows(conn, t.organization_memberships, items),
            lookup=_lookup_membership,
        ),
        Resource(
            name="invitations",
            table=t.organization_invitations,
            path="organization_invitations",
            build=rows.invitation_row,
            upsert=lambda conn, built: writes.upsert_org_children(
                conn, t.organization_invitations, built
            ),
            end=lambda conn, items: writes.end_rows(conn, t.organization_invitations, items),
            lookup=lambda api, row: _lookup_path(
                api, f"organizations/{row['organization_id']}/invitations/{row['id']}"
            ),
        ),
        Resource(
            name="domains",
            table=t.organization_domains,
            path="organization_domains",
            build=rows.domain_row,
            upsert=lambda conn, built: writes.upsert_org_children(
                conn, t.organization_domains, built
            ),
            end=lambda conn, items: writes.tombstone(conn, t.organization_domains, items),
            lookup=_lookup_domain,
        ),
    )
}


@dataclass
class Position:
    """Where a pass stands: items listed so far, and the users' cursor (the last id listed).

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
    api: ClerkAPI, resource: Resource, page_size: int, position: Position
) -> AsyncIterator[list[dict[str, Any]]]:
    """Yield pages in created_at order, advancing `position` after each one.

    Users page by `starting_after` (Clerk's advice for deep lists); if the API rejects or
    ignores the cursor we fall back to offsets. Everything else pages by offset.
    """
    while True:
        params: dict[str, Any] = {**resource.params, "limit": page_size, "order_by": "+created_at"}
        cursor_mode = resource.cursor and position.use_cursor and position.cursor is not None
        if cursor_mode:
            params["starting_after"] = position.cursor
        else:
            params["offset"] = position.offset
        try:
            body = await api.get(resource.path, params)
        except ClerkRequestError:
            # Rejected (422), or the cursor's user is gone (404 and the like): use offsets.
            # Auth errors and 429s never get here as ClerkRequestError.
            if cursor_mode:
                position.use_cursor, position.cursor = False, None
                continue
            raise
        items = (
            body if resource.bare_array else body.get("data") if isinstance(body, dict) else None
        )
        if not isinstance(items, list):
            raise ClerkRequestError(f"unexpected list shape from {resource.path}", 200)
        items = [i for i in items if isinstance(i, dict)]
        if cursor_mode and any(i.get("id") == position.cursor for i in items):
            position.use_cursor, position.cursor = False, None  # starting_after was ignored
            continue
        position.offset += len(items)
        if (
            resource.cursor
            and position.use_cursor
            and items
            and isinstance(items[-1].get("id"), str)
        ):
            position.cursor = items[-1]["id"]
        yield items
        if len(items) < page_size:
            return
