"""What a Clerk kind declares: one `Kind` holds everything the service needs to know about it.

Apply, reconcile, status, readonly-sql and the migrations read kinds from the registry
(service/kinds/registry.py) and never list them themselves. A kind's module declares its
table(s), payload model and payload -> rows, and then one `Kind`: the event types that upsert
or end it, its parents (whose deletion ends it) and owned child tables (replaced with each
snapshot), where reconcile lists it and how it looks one object up, which columns hold
personal data, and the view clerk_fdw users query instead of the wrapper.
"""

from __future__ import annotations

import string
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import Column, ColumnElement, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from service.clerk.rows import Row, RowOptions, Snapshot


@dataclass(frozen=True)
class Parent:
    """`column` names an object of kind `kind`; deleting that object ends this one, and this
    one arriving after that deletion is stored already ended."""

    column: str
    kind: str


@dataclass(frozen=True)
class Owned:
    """A child table whose rows (keyed by `owner_column`) are exactly those of the owner's
    newest applied snapshot, and are dropped when the owner is deleted."""

    table: Table
    owner_column: str


@dataclass(frozen=True)
class Personal:
    """`columns` (of the kind's table or its owned tables) hold personal data of the object of
    kind `person` that `column` names (`id`: the object is the person). Deleting the person
    erases them (service/kinds/erasure.py): set to NULL, or, with `keys`, only those keys
    taken out of the JSON objects the columns hold (the rest is someone else's: an
    invitation's inviter in an invitee's invitation)."""

    column: str
    person: str
    columns: tuple[Column[Any], ...]
    keys: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Listing:
    """Where the Backend API lists every object of the kind, in created_at order."""

    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    bare_array: bool = False  # a bare JSON array, not {data, total_count}
    cursor: bool = False  # pages by `starting_after` (falls back to offsets)
    count_path: str | None = None  # where the total is read when the list carries none
    ordered: bool = True  # takes order_by=+created_at (billing lists take no order)
    # Incremental runs: the order that lists the most recently changed first (users:
    # -updated_at), and whether `count_path` takes created_at_after / created_at_before.
    changed_order: str | None = None
    counts_by_created: bool = False
    # The list's filter that takes up to BY_IDS ids (users: user_id): confirms many at once.
    by_ids: str | None = None
    # Incremental runs: the list per parent object, for parents whose count differs.
    by_parent: ByParent | None = None


BY_IDS = 100  # ids one request of a list's id filter takes (Clerk's spec: up to 100)


@dataclass(frozen=True)
class ByParent:
    """A kind also listed per parent (`path` formatted with the parent's `id`): a parent
    whose `count_column` differs from the replica's live children of it (those whose
    `column` names it), or that changed, gets its children listed there."""

    path: str
    parent: str
    column: str
    count_column: str


@dataclass(frozen=True, eq=False)
class Lookup:
    """How reconcile reads one object to confirm it is gone: `path` (and `params`) formatted
    with the stored row's columns. `in_list`: the path lists objects, the one with the row's
    id is looked for (Clerk has no GET for it alone)."""

    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    in_list: bool = False

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """The row columns the lookup needs (always `id` first)."""
        names = ["id"]
        for template in (self.path, *self.params.values()):
            for _text, name, _spec, _conv in string.Formatter().parse(template):
                if name and name not in names:
                    names.append(name)
        return tuple(names)

    def request(self, row: Mapping[str, Any]) -> tuple[str, dict[str, str]] | None:
        """The path and params for `row`, or None when a column it needs is empty (it cannot
        be looked up then, and reconcile keeps it rather than guess)."""
        if any(not row.get(name) for name in self.columns):
            return None
        params = {key: value.format(**row) for key, value in self.params.items()}
        return self.path.format(**row), params


@dataclass(frozen=True, eq=False)
class FdwView:
    """The table clerk_fdw (the Clerk foreign data wrapper) exposes for this kind, as a view of
    its live rows: `name`, and its columns as expressions over the kind's table, in clerk_fdw's
    order and types, so queries written for the wrapper run unchanged (PostgreSQL only)."""

    name: str
    columns: Callable[[Table], list[ColumnElement[Any]]]


# Runs before the versioned upsert of a kind's rows, in the same transaction: kind-specific
# rules that may end some of the rows (memberships: one live per organization and user).
BeforeUpsert = Callable[[AsyncConnection, list[Row]], Awaitable[None]]


@dataclass(frozen=True, eq=False)
class Kind:
    """One Clerk kind. `name` is how reconcile, `status` and the CLI call it (plural)."""

    name: str
    # Where it comes in reconcile's walk and `status` (after its parents whatever this says).
    order: int
    table: Table
    build: Callable[[dict[str, Any], RowOptions], Snapshot]
    upserts: tuple[str, ...]  # event types carrying a snapshot
    deletes: tuple[str, ...] = ()  # event types ending the object
    # The deletion event carries the whole object (stored, ended), not only its id.
    deletion_carries_snapshot: bool = False
    parents: tuple[Parent, ...] = ()
    owns: tuple[Owned, ...] = ()
    before_upsert: BeforeUpsert | None = None
    listing: Listing | None = None
    lookup: Lookup | None = None
    # Whose personal data its rows hold: one Personal per person a payload names.
    personal: Personal | tuple[Personal, ...] | None = None
    # Kinds whose snapshots this one's carry (Snapshot.embedded), stored with it.
    embeds: tuple[str, ...] = ()
    fdw: FdwView | None = None

    @property
    def personals(self) -> tuple[Personal, ...]:
        """Every Personal it declares (none, one, or one per person its payloads name)."""
        if self.personal is None:
            return ()
        return self.personal if isinstance(self.personal, tuple) else (self.personal,)

    @property
    def tables(self) -> tuple[Table, ...]:
        """Its table, then the tables it owns."""
        return (self.table, *(o.table for o in self.owns))
