"""The registry of kinds: every module in service/kinds/ that declares a `KIND` is one.

Nothing else lists kinds: adding a kind is its module (declaration and table), a migration and
its tests. Kinds come parents first (then by their `order`): the order reconcile walks them in,
so that children see their parents' tombstones.
"""

from __future__ import annotations

import importlib
import pkgutil
from enum import StrEnum

from sqlalchemy import Table

import service.kinds
from service.kinds.declaration import Kind, Parent

_NOT_KINDS = {"declaration", "erasure", "registry", "tables", "writes"}


class Action(StrEnum):
    UPSERT = "upsert"
    END = "end"


def _discover() -> list[Kind]:
    found: list[Kind] = []
    for module in pkgutil.iter_modules(service.kinds.__path__):
        if module.name in _NOT_KINDS:
            continue
        kind = getattr(importlib.import_module(f"service.kinds.{module.name}"), "KIND", None)
        if isinstance(kind, Kind):
            found.append(kind)
    return found


def _ordered(kinds: list[Kind]) -> tuple[Kind, ...]:
    by_name = {k.name: k for k in kinds}
    if len(by_name) != len(kinds):
        raise RuntimeError("two kinds share a name")
    depth: dict[str, int] = {}

    def depth_of(kind: Kind, path: tuple[str, ...] = ()) -> int:
        if kind.name in path:
            raise RuntimeError(f"kinds are their own parents: {' -> '.join(path)}")
        if kind.name not in depth:
            parents = [by_name[p.kind] for p in kind.parents]
            depth[kind.name] = 1 + max(
                (depth_of(p, (*path, kind.name)) for p in parents), default=-1
            )
        return depth[kind.name]

    for kind in kinds:
        for parent in kind.parents:
            if parent.kind not in by_name:
                raise RuntimeError(f"{kind.name}: unknown parent kind {parent.kind!r}")
        for name in kind.embeds:
            if name not in by_name:
                raise RuntimeError(f"{kind.name}: embeds unknown kind {name!r}")
        for personal in kind.personals:
            if personal.person not in by_name:
                raise RuntimeError(f"{kind.name}: unknown person kind {personal.person!r}")
    return tuple(sorted(kinds, key=lambda k: (depth_of(k), k.order, k.name)))


KINDS: tuple[Kind, ...] = _ordered(_discover())
BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS}


def _routes() -> dict[str, tuple[Kind, Action]]:
    routes: dict[str, tuple[Kind, Action]] = {}
    for kind in KINDS:
        for types, action in ((kind.upserts, Action.UPSERT), (kind.deletes, Action.END)):
            for event_type in types:
                if event_type in routes:
                    raise RuntimeError(f"two kinds claim the event type {event_type!r}")
                routes[event_type] = (kind, action)
    return routes


ROUTES = _routes()


def is_replicated(event_type: str) -> bool:
    """Whether events of this type are applied (all others are acknowledged and ignored)."""
    return event_type in ROUTES


def kind(name: str) -> Kind:
    return BY_NAME[name]


def parent_table(parent: Parent) -> Table:
    return BY_NAME[parent.kind].table


def _dependents() -> dict[str, tuple[tuple[Kind, Parent], ...]]:
    found: dict[str, list[tuple[Kind, Parent]]] = {k.name: [] for k in KINDS}
    for child in KINDS:
        for parent in child.parents:
            found[parent.kind].append((child, parent))
    return {name: tuple(items) for name, items in found.items()}


_DEPENDENTS = _dependents()


def dependents(of: Kind) -> tuple[tuple[Kind, Parent], ...]:
    """The kinds whose objects end when an object of `of` is deleted, with the column."""
    return _DEPENDENTS[of.name]


def _erased_with() -> dict[str, tuple[Kind, ...]]:
    found: dict[str, list[Kind]] = {k.name: [] for k in KINDS}
    for k in KINDS:
        for person in dict.fromkeys(p.person for p in k.personals):
            found[person].append(k)
    return {name: tuple(items) for name, items in found.items()}


_ERASED_WITH = _erased_with()


def erased_with(person: Kind) -> tuple[Kind, ...]:
    """The kinds holding personal data of objects of `person` (itself included when it holds
    its own): what deleting one of them erases."""
    return _ERASED_WITH[person.name]


def persons() -> tuple[Kind, ...]:
    """The kinds whose objects are people: deleting one erases their personal data."""
    return tuple(k for k in KINDS if _ERASED_WITH[k.name])


def replica_tables() -> tuple[Table, ...]:
    """Every table apps read, kind by kind: its own table, then the tables it owns."""
    return tuple(table for k in KINDS for table in k.tables)
