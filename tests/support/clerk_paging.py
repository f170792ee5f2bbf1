"""How Clerk's Backend API pages a list (clerk-facts.md section 3), as the fake answers it.

limit 1..500 (default 10), offset >= 0, order_by +/-created_at (default -created_at), and on
/users a starting_after cursor, which refuses a non-zero offset. Whatever Clerk refuses with a
422 raises `Invalid`, carrying Clerk's error code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.support.clerk_instances import Synthetic

MAX_LIMIT = 500


class Invalid(Exception):
    def __init__(self, message: str, code: str = "form_param_value_invalid") -> None:
        super().__init__(message)
        self.message, self.code = message, code


def page(items: Any, params: dict[str, str], *, cursor: bool) -> tuple[list[Any], int]:
    """One page of `items` (a list of objects, or a Synthetic instance: JSON bytes once
    encoded) and the total count; `cursor`: whether starting_after is honoured."""
    limit = _int(params, "limit", 10)
    offset = _int(params, "offset", 0)
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}")
    if offset < 0:
        raise Invalid("offset must be at least 0")
    order = params.get("order_by", "-created_at")
    if order.lstrip("+-") != "created_at":
        raise Invalid("order_by is not supported by this fake")
    descending = order.startswith("-")
    total = len(items)
    after = params.get("starting_after") if cursor else None
    if isinstance(items, Synthetic):
        indices: Sequence[int] = range(total - 1, -1, -1) if descending else range(total)
        if after is not None:
            found = items.index_of(after)
            if found is None:
                raise Invalid("starting_after does not match a user")
            indices = range(found - 1, -1, -1) if descending else range(found + 1, total)
            if offset:
                raise Invalid("starting_after cannot be combined with offset")
        return items.page(indices[offset : offset + limit]), total
    ordered = sorted(items, key=lambda o: (o["created_at"], o["id"]), reverse=descending)
    if after is not None:
        if offset:
            raise Invalid("starting_after cannot be combined with offset")
        ids = [o["id"] for o in ordered]
        if after not in ids:
            raise Invalid("starting_after does not match a user")
        ordered = ordered[ids.index(after) + 1 :]
    return [dict(o) for o in ordered[offset : offset + limit]], total


def _int(params: dict[str, str], name: str, default: int) -> int:
    try:
        return int(params.get(name, default))
    except ValueError:
        raise Invalid(f"{name} must be an integer", "form_param_format_invalid") from None
