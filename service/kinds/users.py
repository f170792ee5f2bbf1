"""Users, with the email addresses, phone numbers and external accounts each snapshot carries."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import Boolean, Column, Table, Text, and_, text

from service.clerk import payloads as p
from service.clerk import rows as r
from service.clerk.payloads import Millis
from service.clerk.rows import RowOptions, Snapshot
from service.clerk.timestamps import from_ms
from service.db.types import JSONValue, UTCDateTime, metadata, partial_index
from service.kinds.declaration import Kind, Listing, Lookup, Owned, Personal
from service.kinds.tables import identifier_table, versioned_times

users = Table(
    "clerk_users",
    metadata,
    Column("id", Text, primary_key=True),
    Column("external_id", Text, index=True),
    Column("username", Text),
    Column("first_name", Text),
    Column("last_name", Text),
    Column("primary_email_address", Text, index=True),
    Column("primary_phone_number", Text),
    Column("image_url", Text),
    Column("banned", Boolean),
    Column("locked", Boolean),
    Column("public_metadata", JSONValue),
    Column("private_metadata", JSONValue),
    Column("unsafe_metadata", JSONValue),
    Column("last_sign_in_at", UTCDateTime),
    Column("last_active_at", UTCDateTime),
    *versioned_times(),
    Column("raw", JSONValue),
)
# Tombstones still holding personal data: what the sweep erases (none once it has run, so the
# index stays empty), without scanning the users.
partial_index(
    "ix_clerk_users_unerased",
    users.c.id,
    where=and_(users.c.deleted_at.is_not(None), users.c.raw.is_not(None)),
)
email_addresses = identifier_table("clerk_email_addresses", "email_address")
phone_numbers = identifier_table("clerk_phone_numbers", "phone_number")
external_accounts = Table(
    "clerk_external_accounts",
    metadata,
    Column("id", Text, primary_key=True),
    Column("user_id", Text, nullable=False, index=True),
    Column("provider", Text),
    Column("provider_user_id", Text),
    Column("email_address", Text, index=True),
    Column("username", Text),
    Column("verification_status", Text),
    Column("verification_strategy", Text),
    Column("is_primary", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", UTCDateTime),
    Column("updated_at", UTCDateTime),
    Column("raw", JSONValue),
)


class EmailAddress(p.Model):
    id: str | None = None  # optional in the spec: an identifier without one is not stored
    email_address: str
    verification: p.Verification | None = None
    created_at: Millis | None = None
    updated_at: Millis | None = None


class PhoneNumber(p.Model):
    id: str | None = None
    phone_number: str
    verification: p.Verification | None = None
    created_at: Millis | None = None
    updated_at: Millis | None = None


class ExternalAccount(p.Model):
    id: str
    provider: str | None = None
    provider_user_id: str | None = None
    identification_id: str | None = None
    email_address: str | None = None
    username: str | None = None
    verification: p.Verification | None = None
    created_at: Millis | None = None
    updated_at: Millis | None = None


class User(p.Model):
    id: str
    external_id: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    image_url: str | None = None
    primary_email_address_id: str | None = None
    primary_phone_number_id: str | None = None
    email_addresses: list[EmailAddress] = Field(default_factory=list)
    phone_numbers: list[PhoneNumber] = Field(default_factory=list)
    external_accounts: list[ExternalAccount] = Field(default_factory=list)
    public_metadata: dict[str, Any] | None = None
    private_metadata: dict[str, Any] | None = None
    unsafe_metadata: dict[str, Any] | None = None
    banned: bool | None = None
    locked: bool | None = None
    last_sign_in_at: Millis | None = None
    last_active_at: Millis | None = None
    created_at: Millis
    updated_at: Millis


def build(data: dict[str, Any], options: RowOptions) -> Snapshot:
    user = p.parse(User, data)
    # Keyed by id: one without an id cannot be a row of its own (its value stays in `raw`).
    emails = {e.id: e for e in user.email_addresses if e.id}
    phones = {n.id: n for n in user.phone_numbers if n.id}
    primary_email = emails.get(user.primary_email_address_id or "")
    primary_phone = phones.get(user.primary_phone_number_id or "")
    row: r.Row = {
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
        "private_metadata": r.private(user.private_metadata, options),
        "unsafe_metadata": user.unsafe_metadata,
        "last_sign_in_at": from_ms(user.last_sign_in_at),
        "last_active_at": from_ms(user.last_active_at),
        **r.times(user.created_at, user.updated_at),
        "raw": r.raw(data, options),
    }
    raw_emails = r.raw_items(data, "email_addresses")
    raw_phones = r.raw_items(data, "phone_numbers")
    raw_accounts = r.raw_items(data, "external_accounts")
    children = {
        email_addresses: [
            {
                "id": e.id,
                "user_id": user.id,
                "email_address": e.email_address,
                **r.verification_columns(e.verification),
                "is_primary": e.id == user.primary_email_address_id,
                "created_at": from_ms(e.created_at),
                "updated_at": from_ms(e.updated_at),
                "raw": raw_emails.get(e.id or ""),
            }
            for e in emails.values()
        ],
        phone_numbers: [
            {
                "id": n.id,
                "user_id": user.id,
                "phone_number": n.phone_number,
                **r.verification_columns(n.verification),
                "is_primary": n.id == user.primary_phone_number_id,
                "created_at": from_ms(n.created_at),
                "updated_at": from_ms(n.updated_at),
                "raw": raw_phones.get(n.id or ""),
            }
            for n in phones.values()
        ],
        external_accounts: [
            {
                "id": a.id,
                "user_id": user.id,
                "provider": a.provider,
                "provider_user_id": a.provider_user_id,
                "email_address": a.email_address,
                "username": a.username,
                **r.verification_columns(a.verification),
                "is_primary": a.identification_id is not None
                and a.identification_id == user.primary_email_address_id,
                "created_at": from_ms(a.created_at),
                "updated_at": from_ms(a.updated_at),
                "raw": raw_accounts.get(a.id),
            }
            for a in {a.id: a for a in user.external_accounts}.values()
        ],
    }
    return Snapshot(row, children)


KIND = Kind(
    name="users",
    order=1,
    table=users,
    build=build,
    upserts=("user.created", "user.updated"),
    deletes=("user.deleted",),
    owns=(
        Owned(email_addresses, "user_id"),
        Owned(phone_numbers, "user_id"),
        Owned(external_accounts, "user_id"),
    ),
    listing=Listing("users", bare_array=True, cursor=True, count_path="users/count"),
    lookup=Lookup("users/{id}"),
    # A deleted user keeps id, external_id, flags and times: the tombstone, nothing that names
    # the person. The owned rows go with the user anyway.
    personal=Personal(
        "id",
        "users",
        (
            users.c.username,
            users.c.first_name,
            users.c.last_name,
            users.c.primary_email_address,
            users.c.primary_phone_number,
            users.c.image_url,
            users.c.public_metadata,
            users.c.private_metadata,
            users.c.unsafe_metadata,
            users.c.raw,
            email_addresses.c.email_address,
            email_addresses.c.raw,
            phone_numbers.c.phone_number,
            phone_numbers.c.raw,
            external_accounts.c.provider_user_id,
            external_accounts.c.email_address,
            external_accounts.c.username,
            external_accounts.c.raw,
        ),
    ),
)
