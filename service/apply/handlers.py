"""Event type -> handler. Types not listed here are acknowledged and recorded as ignored."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from service.apply import rows
from service.apply.rows import RowOptions
from service.replica import tables as t
from service.replica import writes


@dataclass(frozen=True)
class Event:
    """A verified event as the apply step sees it."""

    svix_id: str
    type: str
    data: dict[str, Any]
    occurred_at: datetime  # envelope timestamp, or arrival time when Clerk sent none


class Write(StrEnum):
    """Kinds of replica write. Events of one kind in a batch become one set-based call."""

    UPSERT_USERS = "upsert_users"
    UPSERT_ORGANIZATIONS = "upsert_organizations"
    UPSERT_MEMBERSHIPS = "upsert_memberships"
    UPSERT_INVITATIONS = "upsert_invitations"
    UPSERT_DOMAINS = "upsert_domains"
    DELETE_USERS = "delete_users"
    DELETE_ORGANIZATIONS = "delete_organizations"
    DELETE_MEMBERSHIPS = "delete_memberships"
    DELETE_DOMAINS = "delete_domains"


@dataclass(frozen=True)
class Planned:
    """Validated write for one event, ready to run; building it does no I/O.

    `locks` names the users/organizations whose writers must not interleave with this one
    (see writes.lock_parents). A batch takes all of them up front, in one sorted statement,
    before any row lock: two batches touching the same objects then queue in one order
    instead of deadlocking.
    """

    object_id: str
    write: Write
    item: Any
    locks: tuple[str, ...] = ()


Planner = Callable[[Event, RowOptions], Planned]


def _user_upsert(event: Event, options: RowOptions) -> Planned:
    snap = rows.user_rows(event.data, options)
    return Planned(snap.user["id"], Write.UPSERT_USERS, snap, (snap.user["id"],))


def _user_delete(event: Event, _options: RowOptions) -> Planned:
    user_id = rows.deleted_id(event.data)
    return Planned(user_id, Write.DELETE_USERS, (user_id, event.occurred_at), (user_id,))


def _org_upsert(event: Event, options: RowOptions) -> Planned:
    row = rows.organization_row(event.data, options)
    return Planned(row["id"], Write.UPSERT_ORGANIZATIONS, row, (row["id"],))


def _org_delete(event: Event, _options: RowOptions) -> Planned:
    org_id = rows.deleted_id(event.data)
    return Planned(org_id, Write.DELETE_ORGANIZATIONS, (org_id, event.occurred_at), (org_id,))


def _membership_locks(row: rows.Row) -> tuple[str, ...]:
    return (row["user_id"], row["organization_id"])


def _membership_upsert(event: Event, options: RowOptions) -> Planned:
    row = rows.membership_row(event.data, options)
    return Planned(row["id"], Write.UPSERT_MEMBERSHIPS, row, _membership_locks(row))


def _membership_delete(event: Event, options: RowOptions) -> Planned:
    row = rows.membership_row(event.data, options, deleted_at=event.occurred_at)
    return Planned(row["id"], Write.DELETE_MEMBERSHIPS, row, _membership_locks(row))


def _org_locks(row: rows.Row) -> tuple[str, ...]:
    return (row["organization_id"],) if row["organization_id"] else ()


def _invitation_upsert(event: Event, options: RowOptions) -> Planned:
    row = rows.invitation_row(event.data, options)
    return Planned(row["id"], Write.UPSERT_INVITATIONS, row, _org_locks(row))


def _domain_upsert(event: Event, options: RowOptions) -> Planned:
    row = rows.domain_row(event.data, options)
    return Planned(row["id"], Write.UPSERT_DOMAINS, row, _org_locks(row))


def _domain_delete(event: Event, _options: RowOptions) -> Planned:
    domain_id = rows.deleted_id(event.data)
    return Planned(domain_id, Write.DELETE_DOMAINS, (domain_id, event.occurred_at))


Writer = Callable[[AsyncConnection, list[Any]], Awaitable[object]]


async def _upsert_invitations(conn: AsyncConnection, items: list[rows.Row]) -> object:
    return await writes.upsert_org_children(conn, t.organization_invitations, items)


async def _upsert_domains(conn: AsyncConnection, items: list[rows.Row]) -> object:
    return await writes.upsert_org_children(conn, t.organization_domains, items)


async def _delete_domains(conn: AsyncConnection, items: list[tuple[str, datetime]]) -> None:
    await writes.tombstone(conn, t.organization_domains, items)


# Run in this order within a batch. Each call is equivalent to applying its events one by one
# (the writes keep the newest snapshot per id and the earliest end), and any order of events
# converges (tests/test_convergence.py), so grouping changes the cost, not the result.
WRITERS: dict[Write, Writer] = {
    Write.UPSERT_USERS: writes.upsert_users,
    Write.UPSERT_ORGANIZATIONS: writes.upsert_organizations,
    Write.UPSERT_MEMBERSHIPS: writes.upsert_memberships,
    Write.UPSERT_INVITATIONS: _upsert_invitations,
    Write.UPSERT_DOMAINS: _upsert_domains,
    Write.DELETE_USERS: writes.delete_users,
    Write.DELETE_ORGANIZATIONS: writes.delete_organizations,
    Write.DELETE_MEMBERSHIPS: writes.delete_memberships,
    Write.DELETE_DOMAINS: _delete_domains,
}


async def run_planned(conn: AsyncConnection, planned: Sequence[Planned]) -> None:
    """Run the writes of several events in the caller's transaction, one call per kind."""
    await writes.lock_parents(conn, (key for p in planned for key in p.locks))
    grouped: dict[Write, list[Any]] = defaultdict(list)
    for p in planned:
        grouped[p.write].append(p.item)
    for write, writer in WRITERS.items():
        if grouped.get(write):
            await writer(conn, grouped[write])


PLANNERS: dict[str, Planner] = {
    "user.created": _user_upsert,
    "user.updated": _user_upsert,
    "user.deleted": _user_delete,
    "organization.created": _org_upsert,
    "organization.updated": _org_upsert,
    "organization.deleted": _org_delete,
    "organizationMembership.created": _membership_upsert,
    "organizationMembership.updated": _membership_upsert,
    "organizationMembership.deleted": _membership_delete,
    "organizationInvitation.created": _invitation_upsert,
    "organizationInvitation.accepted": _invitation_upsert,
    "organizationInvitation.revoked": _invitation_upsert,
    "organizationDomain.created": _domain_upsert,
    "organizationDomain.updated": _domain_upsert,
    "organizationDomain.deleted": _domain_delete,
}


def is_replicated(event_type: str) -> bool:
    return event_type in PLANNERS


def plan(event: Event, options: RowOptions) -> Planned:
    """Validate the event and build its writes; raises PayloadError for a permanent failure."""
    return PLANNERS[event.type](event, options)
