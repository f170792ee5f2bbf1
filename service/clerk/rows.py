"""Payload -> replica rows: the shape every kind's rows share. Pure functions: everything that
can reject a payload happens while building rows, before any write, so a permanent failure
never leaves half an event behind."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import Table

from service.clerk import bounds
from service.clerk.payloads import PayloadError, Verification
from service.clerk.timestamps import from_ms
from service.config import Settings

Row = dict[str, Any]

_NO_CHILDREN: Mapping[Table, list[Row]] = MappingProxyType({})
_NO_EMBEDDED: Mapping[str, list[Snapshot]] = MappingProxyType({})


@dataclass(frozen=True)
class RowOptions:
    """How this install keeps Clerk's data (STORE_PRIVATE_METADATA, ERASE_DELETED_USERS)."""

    store_private_metadata: bool = True
    erase_deleted_users: bool = True
    change_feed: bool = True  # CHANGE_FEED: writers name their sources and take its lock
    # When a reconcile listing read the objects: the version of those whose payload carries
    # no time of its own (Clerk's billing plans).
    listed_at: datetime | None = None
    # The configured Clerk instance ids by endpoint name (CLERK_<NAME>_INSTANCE_ID).
    instance_ids: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> RowOptions:
        return cls(
            settings.database.store_private_metadata,
            settings.database.erase_deleted_users,
            change_feed=settings.database.change_feed,
            instance_ids=tuple(sorted(settings.instance_ids().items())),
        )


class Snapshot:
    """One object as one payload showed it: its row, the rows of the child tables it owns (a
    user's email addresses...), which are replaced together with it, and snapshots of objects
    of other kinds it carries (a subscription's items, an item's plan), by kind name, which are
    stored under their own kind's rules.

    Every row carries `instance_id`, the Clerk instance it came from: None until `stamp` names
    it (payloads do not say it; the envelope or the listing's key does)."""

    __slots__ = ("children", "embedded", "row")

    def __init__(
        self,
        row: Row,
        children: Mapping[Table, list[Row]] = _NO_CHILDREN,
        embedded: Mapping[str, list[Snapshot]] = _NO_EMBEDDED,
    ) -> None:
        row.setdefault("instance_id", None)
        for rows in children.values():
            for child in rows:
                child.setdefault("instance_id", None)
        self.row = row
        self.children = children
        self.embedded = embedded

    def stamp(self, instance_id: str | None) -> Snapshot:
        """Name the instance on every row: its own, its children's and the embedded ones'."""
        self.row["instance_id"] = instance_id
        for rows in self.children.values():
            for child in rows:
                child["instance_id"] = instance_id
        for snapshots in self.embedded.values():
            for snap in snapshots:
                snap.stamp(instance_id)
        return self

    def __repr__(self) -> str:
        return f"Snapshot(id={self.row.get('id')!r})"  # never the values: they are PII

    @property
    def id(self) -> str:
        value: str = self.row["id"]
        return value


def raw(data: dict[str, Any], options: RowOptions) -> dict[str, Any]:
    """The object as Clerk sent it, without private metadata at any depth (a membership's
    organization carries its own) when that is not to be kept."""
    if options.store_private_metadata:
        return data
    return without_private(data)


def without_private(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with every `private_metadata` key removed, at any depth up to the bound: copies
    only of what held one, `data` itself when nothing did. PayloadError when `data` nests
    deeper than bounds.MAX_DEPTH (the object is never stored with what it should not keep)."""
    redacted = _redact(data, 1)
    assert isinstance(redacted, dict)
    return redacted


def _redact(value: Any, level: int) -> Any:
    # One frame per level (no comprehensions): MAX_DEPTH levels stay far from the stack's end.
    if level > bounds.MAX_DEPTH and isinstance(value, dict | list):
        raise PayloadError(f"the object nests more than {bounds.MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        items: dict[str, Any] = {}
        same = True
        for key, child in value.items():
            if key == "private_metadata":
                same = False
                continue
            redacted = _redact(child, level + 1)
            same = same and redacted is child
            items[key] = redacted
        return value if same else items
    if isinstance(value, list):
        changed: list[Any] = []
        same = True
        for child in value:
            redacted = _redact(child, level + 1)
            same = same and redacted is child
            changed.append(redacted)
        return value if same else changed
    return value


def private(value: dict[str, Any] | None, options: RowOptions) -> dict[str, Any] | None:
    return value if options.store_private_metadata else None


def times(created_at: int, updated_at: int, deleted_at: datetime | None = None) -> Row:
    return {
        "created_at": from_ms(created_at),
        "updated_at": from_ms(updated_at),
        "deleted_at": deleted_at,
    }


def verification_columns(v: Verification | None) -> Row:
    status, strategy = (v.status, v.strategy) if v is not None else (None, None)
    return {"verification_status": status, "verification_strategy": strategy}


def raw_items(data: dict[str, Any], key: str) -> dict[str, Any]:
    """The items of a list in `data` by id, as Clerk sent them (the `raw` of child rows)."""
    items = data.get(key)
    if not isinstance(items, list):
        return {}
    return {i["id"]: i for i in items if isinstance(i, dict) and isinstance(i.get("id"), str)}
