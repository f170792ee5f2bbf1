"""Clerk instances for the fake to serve: a small hand-made one (`populate`), and synthetic
ones of any size whose objects are made from their index on demand."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from tests.support import clerk_payloads as cp

if TYPE_CHECKING:
    from tests.support.fake_clerk import FakeClerk


class Synthetic(Sequence[dict[str, Any]]):
    """n objects made on demand from their index (ids `<prefix>000000001`...), in created_at
    order, so a 100k-object fake costs no memory.

    `encode()` makes every object once and keeps its JSON: then serving a page costs a join,
    which keeps a benchmark's fake from competing with the code it measures. `lazily()` serves
    JSON too, each object made and encoded when a page asks for it (a few microseconds each),
    so an instance of millions stays small.
    """

    def __init__(self, n: int, prefix: str, make: Callable[[int, str], dict[str, Any]]) -> None:
        self.n, self.prefix, self._make = n, prefix, make
        self._encoded: list[bytes] | None = None
        self._lazy = False

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.n))]
        if index < 0:
            index += self.n
        if not 0 <= index < self.n:
            raise IndexError(index)
        if self._encoded is not None:
            return json.loads(self._encoded[index])
        return self._make(index, self.id_of(index))

    def id_of(self, index: int) -> str:
        return f"{self.prefix}{index:09d}"

    def index_of(self, object_id: str) -> int | None:
        digits = object_id.removeprefix(self.prefix)
        if digits == object_id or not digits.isdigit():
            return None
        index = int(digits)
        return index if 0 <= index < self.n else None

    def encode(self) -> Synthetic:
        self._encoded = [
            json.dumps(self._make(i, self.id_of(i)), separators=(",", ":")).encode()
            for i in range(self.n)
        ]
        return self

    def lazily(self) -> Synthetic:
        self._lazy = True
        return self

    def within(self, after: int | None, before: int | None, inclusive: bool) -> range:
        """The indices whose created_at (T0 + index, as every synthetic kind makes it) lies
        after `after` and before `before` (ms; bounds included if `inclusive`)."""
        low = 0 if after is None else max(0, after - cp.T0 + (0 if inclusive else 1))
        high = self.n if before is None else min(self.n, before - cp.T0 + (1 if inclusive else 0))
        return range(low, max(low, high))

    def page(self, indices: Sequence[int]) -> list[Any]:
        """The objects at `indices`: JSON bytes once encoded, dicts otherwise."""
        if self._encoded is not None:
            return [self._encoded[i] for i in indices]
        if self._lazy:
            return [orjson.dumps(self._make(i, self.id_of(i))) for i in indices]
        return [self[i] for i in indices]


class SyntheticUsers(Synthetic):
    """n users, one verified email each (ids user_000000001...)."""

    def __init__(self, n: int) -> None:
        super().__init__(n, "user_", _synthetic_user)


def _synthetic_user(index: int, user_id: str) -> dict[str, Any]:
    return cp.user(
        user_id,
        created_at=cp.T0 + index,
        updated_at=cp.T0 + index,
        emails=[cp.email(f"idn_{index:09d}", f"u{index}@example.org")],
        first_name=f"User{index}",
    )


def synthetic_instance(
    users: int, orgs: int, memberships: int
) -> tuple[Synthetic, Synthetic, Synthetic]:
    """Users, organizations and memberships spread evenly over them (pairs never repeat
    while memberships <= users x orgs)."""

    def organization(index: int, org_id: str) -> dict[str, Any]:
        spread = max(orgs, 1)
        return cp.organization(
            org_id,
            created_at=cp.T0 + index,
            updated_at=cp.T0 + index,
            slug=f"org-{index}",
            members_count=memberships // spread + (1 if index < memberships % spread else 0),
        )

    def membership(index: int, membership_id: str) -> dict[str, Any]:
        org, nth = index % max(orgs, 1), index // max(orgs, 1)
        return cp.membership(
            membership_id,
            org_id=f"org_{org:09d}",
            user_id=f"user_{(org + nth * 7919) % max(users, 1):09d}",
            created_at=cp.T0 + index,
            updated_at=cp.T0 + index,
        )

    return (
        SyntheticUsers(users),
        Synthetic(orgs, "org_", organization),
        Synthetic(memberships, "orgmem_", membership),
    )


def populate(
    fake: FakeClerk, *, users: int, orgs: int, members_per_org: int, tag: str = ""
) -> None:
    """A small instance: users, organizations, memberships, one invitation and domain per org,
    three permissions, two roles granting them, three waitlist entries. `tag` goes into every
    id (two instances' objects never share one, as in Clerk)."""
    fake.users = [
        cp.user(
            f"user_{tag}{i:05d}",
            created_at=cp.T0 + i,
            updated_at=cp.T0 + i,
            emails=[cp.email(f"idn_{tag}{i:05d}", f"u{i}@example.org")],
        )
        for i in range(users)
    ]
    fake.organizations = [
        cp.organization(
            f"org_{tag}{j:04d}", created_at=cp.T0 + j, updated_at=cp.T0 + j, slug=f"org-{j}"
        )
        for j in range(orgs)
    ]
    fake.memberships = [
        cp.membership(
            f"orgmem_{tag}{j:04d}_{k:03d}",
            org_id=f"org_{tag}{j:04d}",
            user_id=f"user_{tag}{(j * members_per_org + k) % users:05d}",
            created_at=cp.T0 + j * members_per_org + k,
            updated_at=cp.T0 + j * members_per_org + k,
        )
        for j in range(orgs)
        for k in range(members_per_org)
    ]
    fake.invitations = [
        cp.invitation(
            f"orginv_{tag}{j:04d}",
            org_id=f"org_{tag}{j:04d}",
            created_at=cp.T0 + j,
            updated_at=cp.T0 + j,
        )
        for j in range(orgs)
    ]
    fake.domains = [
        cp.domain(
            f"orgdmn_{tag}{j:04d}",
            org_id=f"org_{tag}{j:04d}",
            created_at=cp.T0 + j,
            updated_at=cp.T0 + j,
        )
        for j in range(orgs)
    ]
    fake.permissions = [
        cp.permission(f"perm_{tag}{k:03d}", key=f"org:thing{k}:manage", created_at=cp.T0 + k)
        for k in range(3)
    ]
    fake.roles = [
        cp.role(
            f"role_{tag}{k:03d}",
            key=f"org:role{k}",
            permissions=fake.permissions[: k + 1],
            created_at=cp.T0 + k,
        )
        for k in range(2)
    ]
    fake.billing_plans = [cp.billing_plan(f"cplan_{tag}pro", slug="pro")]
    fake.billing_subscription_items = [
        cp.listed_subscription_item(f"csub_item_{tag}1", plan_slug="pro")
    ]
    fake.waitlist_entries = [
        cp.waitlist_entry(
            f"wle_{tag}{k:03d}", email_address=f"w{k}@example.org", created_at=cp.T0 + k
        )
        for k in range(3)
    ]
