"""The identifiers and accounts a user snapshot carries, each in a table of its own owned by
the user (exactly those of the newest applied snapshot): email addresses, phone numbers, web3
wallets, external (OAuth) and enterprise (SAML/OIDC) accounts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field
from sqlalchemy import Boolean, Column, Table, Text, text

from service.clerk import payloads as p
from service.clerk import rows as r
from service.clerk.payloads import Millis
from service.clerk.rows import Row
from service.clerk.timestamps import from_ms
from service.db.types import JSONValue, UTCDateTime, metadata
from service.kinds.columns import identifier_table, instance_column

email_addresses = identifier_table("clerk_email_addresses", "email_address")
phone_numbers = identifier_table("clerk_phone_numbers", "phone_number")
web3_wallets = identifier_table("clerk_web3_wallets", "web3_wallet")
enterprise_accounts = Table(
    "clerk_enterprise_accounts",
    metadata,
    Column("id", Text, primary_key=True),
    Column("user_id", Text, nullable=False, index=True),
    Column("email_address", Text, index=True),
    Column("provider", Text),
    Column("protocol", Text),
    Column("active", Boolean),
    Column("provider_user_id", Text),
    Column("enterprise_connection_id", Text, index=True),
    Column("verification_status", Text),
    Column("verification_strategy", Text),
    Column("last_authenticated_at", UTCDateTime),
    Column("raw", JSONValue),
    instance_column(),
)
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
    instance_column(),
)


class Identifier(p.Model):
    """An email address, phone number or web3 wallet: the spec does not require its id."""

    id: str | None = None
    verification: p.Verification | None = None
    created_at: Millis | None = None
    updated_at: Millis | None = None


class EmailAddress(Identifier):
    email_address: str


class PhoneNumber(Identifier):
    phone_number: str


class Web3Wallet(Identifier):
    web3_wallet: str


class EnterpriseAccount(p.Model):
    id: str
    email_address: str | None = None
    provider: str | None = None
    protocol: str | None = None
    active: bool | None = None
    provider_user_id: str | None = None
    enterprise_connection_id: str | None = None
    verification: p.Verification | None = None
    last_authenticated_at: Millis | None = None


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


class Identifiers(p.Model):
    """The part of a user payload this module turns into rows."""

    primary_email_address_id: str | None = None
    primary_phone_number_id: str | None = None
    primary_web3_wallet_id: str | None = None
    email_addresses: list[EmailAddress] = Field(default_factory=list)
    phone_numbers: list[PhoneNumber] = Field(default_factory=list)
    web3_wallets: list[Web3Wallet] = Field(default_factory=list)
    external_accounts: list[ExternalAccount] = Field(default_factory=list)
    enterprise_accounts: list[EnterpriseAccount] = Field(default_factory=list)


def owned_rows(user_id: str, ids: Identifiers, data: dict[str, Any]) -> dict[Table, list[Row]]:
    """The rows of each owned table. One without an id cannot be a row of its own (the spec
    does not require it on email addresses, phone numbers and wallets): it stays in `raw`."""
    # Most users hold one email address and nothing else: an empty list costs no work.
    raw_accounts = r.raw_items(data, "external_accounts") if ids.external_accounts else {}
    raw_enterprise = r.raw_items(data, "enterprise_accounts") if ids.enterprise_accounts else {}
    return {
        email_addresses: _identifier_rows(
            user_id, ids.email_addresses, "email_address", ids.primary_email_address_id, data
        ),
        phone_numbers: _identifier_rows(
            user_id, ids.phone_numbers, "phone_number", ids.primary_phone_number_id, data
        ),
        external_accounts: [
            {
                "id": a.id,
                "user_id": user_id,
                "provider": a.provider,
                "provider_user_id": a.provider_user_id,
                "email_address": a.email_address,
                "username": a.username,
                **r.verification_columns(a.verification),
                "is_primary": a.identification_id is not None
                and a.identification_id == ids.primary_email_address_id,
                "created_at": from_ms(a.created_at),
                "updated_at": from_ms(a.updated_at),
                "raw": raw_accounts.get(a.id),
            }
            for a in {a.id: a for a in ids.external_accounts}.values()
        ],
        web3_wallets: _identifier_rows(
            user_id, ids.web3_wallets, "web3_wallet", ids.primary_web3_wallet_id, data
        ),
        enterprise_accounts: [
            {
                "id": e.id,
                "user_id": user_id,
                "email_address": e.email_address,
                "provider": e.provider,
                "protocol": e.protocol,
                "active": e.active,
                "provider_user_id": e.provider_user_id,
                "enterprise_connection_id": e.enterprise_connection_id,
                **r.verification_columns(e.verification),
                "last_authenticated_at": from_ms(e.last_authenticated_at),
                "raw": raw_enterprise.get(e.id),
            }
            for e in {e.id: e for e in ids.enterprise_accounts}.values()
        ],
    }


def _identifier_rows(
    user_id: str,
    items: Sequence[Identifier],
    value: str,
    primary_id: str | None,
    data: dict[str, Any],
) -> list[Row]:
    """Rows of one identifier table; `value` names both the payload field and the column."""
    if not items:
        return []
    raw = r.raw_items(data, _LISTS[value])
    return [
        {
            "id": i.id,
            "user_id": user_id,
            value: getattr(i, value),
            **r.verification_columns(i.verification),
            "is_primary": i.id == primary_id,
            "created_at": from_ms(i.created_at),
            "updated_at": from_ms(i.updated_at),
            "raw": raw.get(i.id or ""),
        }
        for i in {i.id: i for i in items if i.id}.values()
    ]


# The user payload's list of each identifier, by its value field.
_LISTS = {
    "email_address": "email_addresses",
    "phone_number": "phone_numbers",
    "web3_wallet": "web3_wallets",
}
