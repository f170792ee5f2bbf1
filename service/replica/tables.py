"""Replica tables. Names and columns are a contract that app databases query.

No foreign keys between them: a membership may arrive before its user or organization,
and that must never fail. Every join column is indexed instead.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text, text

from service.metadata import JSONValue, UTCDateTime, metadata


def _times() -> list[Column[object]]:
    return [
        Column("created_at", UTCDateTime),
        Column("updated_at", UTCDateTime),
        Column("deleted_at", UTCDateTime),
    ]


users = Table(
    "clerk_users",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("external_id", String(255), index=True),
    Column("username", String(255)),
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
    *_times(),
    Column("raw", JSONValue),
)


def _identifier_table(name: str, value_column: str) -> Table:
    return Table(
        name,
        metadata,
        Column("id", String(255), primary_key=True),
        Column("user_id", String(255), nullable=False, index=True),
        Column(value_column, Text, index=True),
        Column("verification_status", String(64)),
        Column("verification_strategy", String(64)),
        Column("is_primary", Boolean, nullable=False, server_default=text("false")),
        Column("created_at", UTCDateTime),
        Column("updated_at", UTCDateTime),
        Column("raw", JSONValue),
    )


email_addresses = _identifier_table("clerk_email_addresses", "email_address")
phone_numbers = _identifier_table("clerk_phone_numbers", "phone_number")

external_accounts = Table(
    "clerk_external_accounts",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("user_id", String(255), nullable=False, index=True),
    Column("provider", String(128)),
    Column("provider_user_id", Text),
    Column("email_address", Text, index=True),
    Column("username", Text),
    Column("verification_status", String(64)),
    Column("verification_strategy", String(64)),
    Column("is_primary", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", UTCDateTime),
    Column("updated_at", UTCDateTime),
    Column("raw", JSONValue),
)

organizations = Table(
    "clerk_organizations",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("name", Text),
    Column("slug", String(255), index=True),
    Column("image_url", Text),
    Column("members_count", Integer),
    Column("max_allowed_memberships", Integer),
    Column("created_by", String(255), index=True),
    Column("public_metadata", JSONValue),
    Column("private_metadata", JSONValue),
    *_times(),
    Column("raw", JSONValue),
)

organization_memberships = Table(
    "clerk_organization_memberships",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("organization_id", String(255), nullable=False, index=True),
    Column("user_id", String(255), nullable=False, index=True),
    Column("role", String(255)),
    Column("role_name", Text),
    Column("permissions", JSONValue),
    Column("public_metadata", JSONValue),
    Column("private_metadata", JSONValue),
    *_times(),
    Column("raw", JSONValue),
)
# Clerk addresses a membership by (organization, user): at most one of them is live.
Index(
    "uq_clerk_organization_memberships_live_pair",
    organization_memberships.c.organization_id,
    organization_memberships.c.user_id,
    unique=True,
    postgresql_where=organization_memberships.c.deleted_at.is_(None),
    sqlite_where=organization_memberships.c.deleted_at.is_(None),
)

organization_invitations = Table(
    "clerk_organization_invitations",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("organization_id", String(255), index=True),
    Column("email_address", Text, index=True),
    Column("role", String(255)),
    Column("status", String(32)),
    Column("user_id", String(255), index=True),
    Column("inviter_id", String(255)),
    Column("public_metadata", JSONValue),
    Column("private_metadata", JSONValue),
    Column("expires_at", UTCDateTime),
    *_times(),
    Column("raw", JSONValue),
)

organization_domains = Table(
    "clerk_organization_domains",
    metadata,
    Column("id", String(255), primary_key=True),
    # Nullable: a domain deletion carries only the domain's id.
    Column("organization_id", String(255), index=True),
    Column("name", String(255), index=True),
    Column("enrollment_mode", String(64)),
    Column("verification_status", String(64)),
    *_times(),
    Column("raw", JSONValue),
)

# Tables that carry a Clerk object with created/updated/deleted times.
VERSIONED_TABLES = (
    users,
    organizations,
    organization_memberships,
    organization_invitations,
    organization_domains,
)
IDENTIFIER_TABLES = (email_addresses, phone_numbers, external_accounts)
