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


# The order_by fields each list accepts, as the backend spec's parameter descriptions list them.
ORDER_FIELDS: dict[str, frozenset[str]] = {
    "users": frozenset(
        {
            "created_at",
            "updated_at",
            "email_address",
            "web3wallet",
            "first_name",
            "last_name",
            "phone_number",
            "username",
            "last_active_at",
            "last_sign_in_at",
        }
    ),
    "organizations": frozenset({"name", "created_at", "members_count"}),
    "memberships": frozenset(
        {"phone_number", "email_address", "created_at", "first_name", "last_name", "username"}
    ),
    "invitations": frozenset({"created_at", "email_address"}),
    "domains": frozenset({"name", "created_at"}),
    "roles": frozenset({"created_at", "name", "key"}),
    "permissions": frozenset({"created_at", "name", "key"}),
    "waitlist_entries": frozenset({"created_at", "email_address", "invited_at"}),
    # The billing lists take no order_by (the spec lists none): created_at order it is.
}
# `query`: an exact id, or part of these fields (as the spec describes each list's filter).
QUERY_FIELDS: dict[str, tuple[str, ...]] = {
    "roles": ("name", "key"),
    "permissions": ("name", "key"),
    "waitlist_entries": ("email_address",),
    "billing_subscription_items": ("plan_id",),
}


def _bound(params: dict[str, str], name: str) -> int | None:
    return _int(params, name, 0) if name in params else None


def _created_within(o: dict[str, Any], params: dict[str, str], inclusive: bool) -> bool:
    """created_at_after / created_at_before (ms); the spec does not say whether they include
    the bound, so the fake can be told either way."""
    created = o.get("created_at")
    after, before = _bound(params, "created_at_after"), _bound(params, "created_at_before")
    if not isinstance(created, int):
        return after is None and before is None
    if after is not None and (created < after if inclusive else created <= after):
        return False
    return before is None or (created <= before if inclusive else created < before)


def _matches(o: dict[str, Any], name: str, params: dict[str, str], inclusive: bool) -> bool:
    query, status = params.get("query"), params.get("status")
    if status is not None and o.get("status") != status:
        return False
    if name == "users" and not _created_within(o, params, inclusive):
        return False
    if query is None or name not in QUERY_FIELDS:
        return True
    fields = (o.get(f) for f in QUERY_FIELDS[name])
    return o["id"] == query or any(isinstance(v, str) and query in v for v in fields)


def _sort_key(field: str) -> Any:
    """Objects by `field` (absent and null first), then id: a total order, as Clerk's is."""

    def key(o: dict[str, Any]) -> tuple[Any, ...]:
        value = o.get(field)
        if value is None and isinstance(o.get("public_user_data"), dict):
            value = o["public_user_data"].get(field)  # a membership's member
        return (value is not None, str(value) if isinstance(value, str) else value or 0, o["id"])

    return key


def page(
    items: Any,
    params: dict[str, str],
    *,
    cursor: bool,
    name: str = "users",
    inclusive_bounds: bool = False,
) -> tuple[list[Any], int]:
    """One page of `items` (a list of objects, or a Synthetic instance: JSON bytes once
    encoded) and the total count; `cursor`: whether starting_after is honoured; `name`: which
    list (its order_by fields, and users' created_at bounds); `inclusive_bounds`: whether
    those bounds include their value."""
    limit = _int(params, "limit", 10)
    offset = _int(params, "offset", 0)
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}")
    if offset < 0:
        raise Invalid("offset must be at least 0")
    order = params.get("order_by", "-created_at")
    field = order.lstrip("+-")
    if field not in ORDER_FIELDS.get(name, frozenset({"created_at"})):
        raise Invalid(f"order_by {field} is not supported")
    descending = order.startswith("-")
    # A synthetic instance is made in created_at order, and updated when created.
    in_made_order = field in ("created_at", "updated_at")
    if field != "created_at" and params.get("starting_after"):
        raise Invalid("starting_after needs order_by created_at")  # Clerk's rule
    if isinstance(items, Synthetic) and not in_made_order:
        raise Invalid(f"the synthetic instance cannot be ordered by {field}")
    total = len(items)
    after = params.get("starting_after") if cursor else None
    if isinstance(items, Synthetic):
        bounded = (
            items.within(
                _bound(params, "created_at_after"),
                _bound(params, "created_at_before"),
                inclusive_bounds,
            )
            if name == "users"
            else range(total)
        )
        total = len(bounded)
        indices: Sequence[int] = bounded[::-1] if descending else bounded
        if after is not None:
            found = items.index_of(after)
            if found is None:
                raise Invalid("starting_after does not match a user")
            if found in bounded:
                at = bounded.index(found)
                indices = bounded[:at][::-1] if descending else bounded[at + 1 :]
            else:
                indices = range(0)
            if offset:
                raise Invalid("starting_after cannot be combined with offset")
        return items.page(indices[offset : offset + limit]), total
    chosen = [o for o in items if _matches(o, name, params, inclusive_bounds)]
    total = len(chosen)
    ordered = sorted(chosen, key=_sort_key(field), reverse=descending)
    if after is not None:
        if offset:
            raise Invalid("starting_after cannot be combined with offset")
        ids = [o["id"] for o in ordered]
        if after not in ids:
            raise Invalid("starting_after does not match a user")
        ordered = ordered[ids.index(after) + 1 :]
    return [dict(o) for o in ordered[offset : offset + limit]], total


def count(items: Any, params: dict[str, str], *, inclusive_bounds: bool = False) -> int:
    """GET /users/count: the users created within created_at_after / created_at_before."""
    if isinstance(items, Synthetic):
        after, before = _bound(params, "created_at_after"), _bound(params, "created_at_before")
        return len(items.within(after, before, inclusive_bounds))
    return sum(1 for o in items if _created_within(o, params, inclusive_bounds))


def _int(params: dict[str, str], name: str, default: int) -> int:
    try:
        return int(params.get(name, default))
    except ValueError:
        raise Invalid(f"{name} must be an integer", "form_param_format_invalid") from None
