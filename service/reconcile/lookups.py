"""Reading one object back from Clerk, as its kind's `Lookup` says: to confirm it is gone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.kinds.declaration import Kind
from service.reconcile.clerk_api import ClerkAPI


def can_look_up(kind: Kind, row: Mapping[str, Any]) -> bool:
    """Whether the row has every column its kind's lookup needs."""
    return kind.lookup is not None and kind.lookup.request(row) is not None


async def look_up(api: ClerkAPI, kind: Kind, row: Mapping[str, Any]) -> dict[str, Any] | None:
    """Clerk's current object for a stored row, or None when Clerk no longer has it (also
    when the list it is found in belongs to an owner that is gone). Only an object with the
    row's own id counts: anything else the API answers is not proof that it lives."""
    if kind.lookup is None:
        return None
    request = kind.lookup.request(row)
    if request is None:
        return None
    path, params = request
    found = await api.get_or_none(path, params or None)
    if not kind.lookup.in_list:
        return found if isinstance(found, dict) and found.get("id") == row["id"] else None
    for item in found.get("data", []) if isinstance(found, dict) else []:
        if isinstance(item, dict) and item.get("id") == row["id"]:
            return item
    return None
