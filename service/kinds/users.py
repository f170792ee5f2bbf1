"""Users, with the email addresses, phone numbers, web3 wallets, external and enterprise accounts
each snapshot carries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, ColumnElement, Table, Text, and_, cast, null

from service.clerk import payloads as p
from service.clerk import rows as r
from service.clerk.payloads import Millis
from service.clerk.rows import RowOptions, Snapshot
from service.clerk.timestamps import from_ms
from service.db.types import JSONValue, UTCDateTime, metadata, partial_index
from service.kinds.columns import epoch_ms, instance_column, versioned_times
from service.kinds.declaration import FdwView, Kind, Listing, Lookup, Owned, Personal
from service.kinds.user_identifiers import (
    Identifiers,
    email_addresses,
    enterprise_accounts,
    external_accounts,
    owned_rows,
    phone_numbers,
    web3_wallets,
)

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
    instance_column(),
)
# Tombstones still holding personal data: what the sweep erases (none once it has run, so the
# index stays empty), without scanning the users.
partial_index(
    "ix_clerk_users_unerased",
    users.c.id,
    where=and_(users.c.deleted_at.is_not(None), users.c.raw.is_not(None)),
)


class User(Identifiers):
    id: str
    external_id: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    image_url: str | None = None
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
    kept = r.raw(data, options)  # the identifiers' `raw` too: without private metadata
    children = owned_rows(user.id, user, kept)
    primary_email = _primary(children[email_addresses], "email_address")
    primary_phone = _primary(children[phone_numbers], "phone_number")
    row: r.Row = {
        "id": user.id,
        "external_id": user.external_id,
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "primary_email_address": primary_email,
        "primary_phone_number": primary_phone,
        "image_url": user.image_url,
        "banned": user.banned,
        "locked": user.locked,
        "public_metadata": user.public_metadata,
        "private_metadata": r.private(user.private_metadata, options),
        "unsafe_metadata": user.unsafe_metadata,
        "last_sign_in_at": from_ms(user.last_sign_in_at),
        "last_active_at": from_ms(user.last_active_at),
        **r.times(user.created_at, user.updated_at),
        "raw": kept,
    }
    return Snapshot(row, children)


def _primary(rows: list[r.Row], column: str) -> Any:
    return next((row[column] for row in rows if row["is_primary"]), None)


def _fdw_columns(t: Table) -> list[ColumnElement[Any]]:
    """clerk_fdw's `clerk_users`. Its `email` is the first address Clerk lists, here the
    primary one; its `phone_numbers` reads Clerk's list as an integer and is always NULL."""
    return [
        t.c.id.label("user_id"),
        t.c.first_name,
        t.c.last_name,
        t.c.primary_email_address.label("email"),
        cast(t.c.raw["gender"].as_string(), Text).label("gender"),
        epoch_ms(t.c.created_at).label("created_at"),
        epoch_ms(t.c.updated_at).label("updated_at"),
        epoch_ms(t.c.last_sign_in_at).label("last_sign_in_at"),
        null().cast(BigInteger).label("phone_numbers"),
        t.c.username,
        t.c.raw.label("attrs"),
    ]


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
        Owned(web3_wallets, "user_id"),
        Owned(enterprise_accounts, "user_id"),
    ),
    listing=Listing(
        "users",
        bare_array=True,
        cursor=True,
        count_path="users/count",
        changed_order="-updated_at",
        counts_by_created=True,
        by_ids="user_id",
    ),
    fdw=FdwView("clerk_users", _fdw_columns),
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
            web3_wallets.c.web3_wallet,
            web3_wallets.c.raw,
            enterprise_accounts.c.email_address,
            enterprise_accounts.c.provider_user_id,
            enterprise_accounts.c.raw,
        ),
    ),
)
