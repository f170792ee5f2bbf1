"""Event type -> handler. Types not listed here are acknowledged and recorded as ignored."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
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


@dataclass(frozen=True)
class Planned:
    """Validated writes for one event, ready to run; building it does no I/O."""

    object_id: str
    run: Callable[[AsyncConnection], Awaitable[object]]


Planner = Callable[[Event, RowOptions], Planned]


def _user_upsert(event: Event, options: RowOptions) -> Planned:
    snap = rows.user_rows(event.data, options)
    return Planned(snap.user["id"], lambda conn: writes.upsert_users(conn, [snap]))


def _user_delete(event: Event, _options: RowOptions) -> Planned:
    user_id = rows.deleted_id(event.data)
    return Planned(user_id, lambda c: writes.delete_users(c, [(user_id, event.occurred_at)]))


def _org_upsert(event: Event, options: RowOptions) -> Planned:
    row = rows.organization_row(event.data, options)
    return Planned(row["id"], lambda conn: writes.upsert_organizations(conn, [row]))


def _org_delete(event: Event, _options: RowOptions) -> Planned:
    org_id = rows.deleted_id(event.data)
    return Planned(org_id, lambda c: writes.delete_organizations(c, [(org_id, event.occurred_at)]))


def _membership_upsert(event: Event, options: RowOptions) -> Planned:
    row = rows.membership_row(event.data, options)
    return Planned(row["id"], lambda conn: writes.upsert_memberships(conn, [row]))


def _membership_delete(event: Event, options: RowOptions) -> Planned:
    row = rows.membership_row(event.data, options, deleted_at=event.occurred_at)
    return Planned(row["id"], lambda conn: writes.delete_memberships(conn, [row]))


def _invitation_upsert(event: Event, options: RowOptions) -> Planned:
    row = rows.invitation_row(event.data, options)
    return Planned(
        row["id"],
        lambda conn: writes.upsert_org_children(conn, t.organization_invitations, [row]),
    )


def _domain_upsert(event: Event, options: RowOptions) -> Planned:
    row = rows.domain_row(event.data, options)
    return Planned(
        row["id"], lambda conn: writes.upsert_org_children(conn, t.organization_domains, [row])
    )


def _domain_delete(event: Event, _options: RowOptions) -> Planned:
    domain_id = rows.deleted_id(event.data)
    return Planned(
        domain_id,
        lambda c: writes.tombstone(c, t.organization_domains, [(domain_id, event.occurred_at)]),
    )


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
