"""Stored event -> planned writes, by the registry's routes. Building a plan does no I/O, and
everything that can reject an event happens here, before any write."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from service import jsoncodec
from service.clerk import bounds
from service.clerk.payloads import PayloadError, deleted_id
from service.clerk.rows import RowOptions, Snapshot
from service.clerk.timestamps import from_ms
from service.config import DEFAULT_INSTANCE
from service.inbox import instances
from service.inbox.store import Claimed
from service.kinds import registry, writes
from service.kinds.declaration import Kind
from service.kinds.registry import Action
from service.replica.locks import lock_parents


@dataclass(frozen=True)
class Event:
    """A verified event as the apply step sees it."""

    svix_id: str
    type: str
    data: dict[str, Any]
    occurred_at: datetime  # envelope timestamp, or arrival time when Clerk sent none
    instance_id: str | None = None  # the envelope's: the instance its rows are of


@dataclass(frozen=True, slots=True)
class Planned:
    """The validated writes of one event.

    `snapshot` is stored (for a deletion that carries the object, already ended); `ending`
    ends the object at that time. `locks` names the users/organizations whose writers must
    not interleave with this one: a batch takes all of them up front, in one sorted
    statement, before any row lock, so two batches touching the same objects queue in one
    order instead of deadlocking.
    """

    object_id: str | None  # None: a deletion that names no object (nothing to write)
    kind: Kind
    snapshot: Snapshot | None
    ending: tuple[str, datetime] | None
    locks: tuple[str, ...]
    instance_id: str | None = None

    @property
    def carried(self) -> list[str]:
        """The ids of the objects of other kinds the snapshot carries (a subscription's items
        and their plans): its event writes them too."""
        found: list[str] = []
        pending = [self.snapshot] if self.snapshot is not None else []
        while pending:
            for snapshots in pending.pop().embedded.values():
                found.extend(s.id for s in snapshots)
                pending.extend(snapshots)
        return found


def event_of(claimed: Claimed) -> Event:
    """The stored delivery as the planner sees it; PayloadError if it cannot be one."""
    if claimed.body is None:
        raise PayloadError("the stored event has no body")
    try:
        envelope = jsoncodec.loads(claimed.body)
        data = envelope["data"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise PayloadError("the stored body is not a Clerk envelope") from None
    if bounds.may_be_too_deep(claimed.body) and bounds.depth(envelope) > bounds.MAX_DEPTH:
        raise PayloadError(f"the stored body nests more than {bounds.MAX_DEPTH} levels deep")
    if bounds.may_hold_nul(claimed.body):
        envelope = bounds.strip_nul(envelope)
        data = envelope["data"]
    if not isinstance(data, dict):
        raise PayloadError("the stored envelope's data is not an object")
    occurred = from_ms(claimed.event_timestamp_ms) or claimed.received_at
    instance = envelope.get("instance_id")
    instance_id = instance if isinstance(instance, str) else None
    return Event(claimed.svix_id, claimed.event_type, data, occurred, instance_id)


async def bindings_for(
    conn: AsyncConnection, claimed: list[Claimed], options: RowOptions
) -> instances.Bindings:
    """The instance bindings in force; under the binding lock when an event may bind its
    endpoint (a name not bound yet: rare, so batches do not queue on it)."""
    configured = dict(options.instance_ids)
    known = await instances.bindings(conn, configured)
    if all(
        (c.instance or DEFAULT_INSTANCE) in known.by_name
        for c in claimed
        if registry.is_replicated(c.event_type)
    ):
        return known
    return await instances.bindings(conn, configured, locked=True)


def feed_sources(planned: Sequence[tuple[str, Planned]]) -> list[tuple[str, str, str | None]]:
    """What the change feed names for each object the events write ((object id, svix id,
    instance id)): what an event carries first, so that an event about the object wins."""
    return [
        *((i, svix_id, p.instance_id) for svix_id, p in planned for i in p.carried),
        *((p.object_id, svix_id, p.instance_id) for svix_id, p in planned if p.object_id),
    ]


def plan(event: Event, options: RowOptions) -> Planned:
    """Validate a replicated event and build its writes; PayloadError for a permanent failure."""
    kind, action = registry.ROUTES[event.type]
    locks_own = bool(registry.dependents(kind))
    if action is Action.UPSERT or kind.deletion_carries_snapshot:
        snap = kind.build(event.data, options).stamp(event.instance_id)
        ending = None
        if action is Action.END:
            snap.row["deleted_at"] = event.occurred_at
            ending = (snap.id, event.occurred_at)
        locks = tuple(snap.row[p.column] for p in kind.parents if snap.row.get(p.column))
        if locks_own:
            locks = (snap.id, *locks)
        return Planned(snap.id, kind, snap, ending, locks, event.instance_id)
    object_id = deleted_id(event.data)
    if object_id is None:
        return Planned(None, kind, None, None, (), event.instance_id)
    locks = (object_id,) if locks_own else ()
    return Planned(object_id, kind, None, (object_id, event.occurred_at), locks, event.instance_id)


async def run_planned(
    conn: AsyncConnection, planned: Sequence[Planned], *, erase: bool = True
) -> None:
    """Run the writes of several events in the caller's transaction: one call per kind and
    action. Grouping changes the cost, not the result: the writes are order-independent.
    `erase`: erase deleted persons' personal data (ERASE_DELETED_USERS)."""
    await lock_parents(conn, (key for p in planned for key in p.locks))
    upserts: dict[str, list[Snapshot]] = defaultdict(list)
    ends: dict[str, list[Planned]] = defaultdict(list)
    for p in planned:
        if p.ending is not None:
            ends[p.kind.name].append(p)
        elif p.snapshot is not None:
            upserts[p.kind.name].append(p.snapshot)
    for kind in registry.KINDS:
        if upserts.get(kind.name):
            await writes.upsert(conn, kind, upserts[kind.name], erase=erase)
    for kind in registry.KINDS:
        ending = ends.get(kind.name)
        if not ending:
            continue
        if kind.deletion_carries_snapshot:
            snapshots = [p.snapshot for p in ending if p.snapshot]
            await writes.end_snapshots(conn, kind, snapshots, erase=erase)
        else:
            items = [(p.instance_id, p.ending) for p in ending if p.ending is not None]
            await writes.end_by_instance(conn, kind, items, erase=erase)
