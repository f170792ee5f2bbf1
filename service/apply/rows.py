"""Payload -> replica rows. Pure functions: everything that can reject a payload happens here,
before any write, so a permanent failure never leaves half an event behind."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.apply import payloads as p
from service.apply.payloads import PayloadError
from service.apply.timestamps import from_ms

Row = dict[str, Any]


@dataclass(frozen=True)
class RowOptions:
    store_private_metadata: bool = True


@dataclass
class UserRows:
    """A user snapshot and the identifiers it carries; they are replaced together."""

    user: Row
    email_addresses: list[Row] = field(default_factory=list)
    phone_numbers: list[Row] = field(default_factory=list)
    external_accounts: list[Row] = field(default_factory=list)


def _raw(data: dict[str, Any], options: RowOptions) -> dict[str, Any]:
    if options.store_private_metadata or "private_metadata" not in data:
        return data
    return {k: v for k, v in data.items() if k != "private_metadata"}


def _private(value: dict[str, Any] | None, options: RowOptions) -> dict[str, Any] | None:
    return value if options.store_private_metadata else None


def _status(v: p.Verification | None) -> tuple[str | None, str | None]:
    return (v.status, v.strategy) if v is not None else (None, None)


def _times(created_at: int, updated_at: int, deleted_at: datetime | None = None) -> Row:
    return {
        "created_at": from_ms(created_at),
        "updated_at": from_ms(updated_at),
        "deleted_at": deleted_at,
    }


def user_rows(data: dict[str, Any], options: RowOptions) -> UserRows:
    user = p.parse(p.User, data)
    emails = {e.id: e for e in user.email_addresses}
    phones = {n.id: n for n in user.phone_numbers}
    primary_email = emails.get(user.primary_email_address_id or "")
    primary_phone = phones.get(user.primary_phone_number_id or "")
    row: Row = {
        "id": user.id,
        "external_id": user.external_id,
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "primary_email_address": primary_email.email_address if primary_email else None,
        "primary_phone_number": primary_phone.phone_number if primary_phone else None,
        "image_url": user.image_url,
        "banned": user.banned,
        "locked": user.locked,
        "public_metadata": user.public_metadata,
        "private_metadata": _private(user.private_metadata, options),
        "unsafe_metadata": user.unsafe_metadata,
        "last_sign_in_at": from_ms(user.last_sign_in_at),
        "last_active_at": from_ms(user.last_active_at),
        **_times(user.created_at, user.updated_at),
        "raw": _raw(data, options),
    }
    raw_emails = _raw_items(data, "email_addresses")
    raw_phones = _raw_items(data, "phone_numbers")
    raw_accounts = _raw_items(data, "external_accounts")
    return UserRows(
        user=row,
        email_addresses=[
            {
                "id": e.id,
                "user_id": user.id,
                "email_address": e.email_address,
                **_verification_columns(e.verification),
                "is_primary": e.id == user.primary_email_address_id,
                "created_at": from_ms(e.created_at),
                "updated_at": from_ms(e.updated_at),
                "raw": raw_emails.get(e.id),
            }
            for e in emails.values()
        ],
        phone_numbers=[
            {
                "id": n.id,
                "user_id": user.id,
                "phone_number": n.phone_number,
                **_verification_columns(n.verification),
                "is_primary": n.id == user.primary_phone_number_id,
                "created_at": from_ms(n.created_at),
                "updated_at": from_ms(n.updated_at),
                "raw": raw_phones.get(n.id),
            }
            for n in phones.values()
        ],
        external_accounts=[
            {
                "id": a.id,
                "user_id": user.id,
                "provider": a.provider,
                "provider_user_id": a.provider_user_id,
                "email_address": a.email_address,
                "username": a.username,
                **_verification_columns(a.verification),
                "is_primary": a.identification_id is not None
                and a.identification_id == user.primary_email_address_id,
                "created_at": from_ms(a.created_at),
                "updated_at": from_ms(a.updated_at),
                "raw": raw_accounts.get(a.id),
            }
            for a in {a.id: a for a in user.external_accounts}.values()
        ],
    )


def _verification_columns(v: p.Verification | None) -> Row:
    status, strategy = _status(v)
    return {"verification_status": status, "verification_strategy": strategy}


def _raw_items(data: dict[str, Any], key: str) -> dict[str, Any]:
    items = data.get(key)
    if not isinstance(items, list):
        return {}
    return {i["id"]: i for i in items if isinstance(i, dict) and isinstance(i.get("id"), str)}


def organization_row(data: dict[str, Any], options: RowOptions) -> Row:
    org = p.parse(p.Organization, data)
    return {
        "id": org.id,
        "name": org.name,
        "slug": org.slug,
        "image_url": org.image_url,
        "members_count": org.members_count,
        "max_allowed_memberships": org.max_allowed_memberships,
        "created_by": org.created_by,
        "public_metadata": org.public_metadata,
        "private_metadata": _private(org.private_metadata, options),
        **_times(org.created_at, org.updated_at),
        "raw": _raw(data, options),
    }


def membership_row(
    data: dict[str, Any], options: RowOptions, *, deleted_at: datetime | None = None
) -> Row:
    m = p.parse(p.Membership, data)
    return {
        "id": m.id,
        "organization_id": m.organization.id,
        "user_id": m.public_user_data.user_id,
        "role": m.role,
        "role_name": m.role_name,
        "permissions": m.permissions,
        "public_metadata": m.public_metadata,
        "private_metadata": _private(m.private_metadata, options),
        **_times(m.created_at, m.updated_at, deleted_at),
        "raw": _raw(data, options),
    }


def invitation_row(data: dict[str, Any], options: RowOptions) -> Row:
    inv = p.parse(p.Invitation, data)
    org_id = inv.organization_id or (
        inv.public_organization_data.id if inv.public_organization_data else None
    )
    if org_id is None:
        raise PayloadError("OrganizationInvitation payload does not fit: organization_id: missing")
    return {
        "id": inv.id,
        "organization_id": org_id,
        "email_address": inv.email_address,
        "role": inv.role,
        "status": inv.status,
        "user_id": inv.user_id,
        "inviter_id": inv.inviter_id,
        "public_metadata": inv.public_metadata,
        "private_metadata": _private(inv.private_metadata, options),
        "expires_at": from_ms(inv.expires_at),
        **_times(inv.created_at, inv.updated_at),
        "raw": _raw(data, options),
    }


def domain_row(data: dict[str, Any], options: RowOptions) -> Row:
    d = p.parse(p.Domain, data)
    status, _ = _status(d.affiliation_verification or d.verification)
    return {
        "id": d.id,
        "organization_id": d.organization_id,
        "name": d.name,
        "enrollment_mode": d.enrollment_mode,
        "verification_status": status,
        **_times(d.created_at, d.updated_at),
        "raw": _raw(data, options),
    }


def deleted_id(data: dict[str, Any]) -> str:
    return p.parse(p.Deleted, data).id
