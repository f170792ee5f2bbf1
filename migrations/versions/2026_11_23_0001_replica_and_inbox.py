"""Replica tables and the inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id(name: str = "id", nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.String(255), nullable=nullable)


def _table(name: str, *columns: sa.Column[object], indexed: Sequence[str] = ()) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.String(255), nullable=False),
        *columns,
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
    )
    for column in indexed:
        op.create_index(f"ix_{name}_{column}", name, [column])


def _versioned() -> list[sa.Column[object]]:
    return [_ts("created_at"), _ts("updated_at"), _ts("deleted_at")]


def _identifier(name: str, value: str, *extra: sa.Column[object]) -> None:
    _table(
        name,
        _id("user_id", nullable=False),
        *extra,
        sa.Column(value, sa.Text()),
        sa.Column("verification_status", sa.String(64)),
        sa.Column("verification_strategy", sa.String(64)),
        sa.Column("is_primary", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.Column("raw", JSON),
        indexed=("user_id", value),
    )


def upgrade() -> None:
    _table(
        "clerk_users",
        _id("external_id"),
        sa.Column("username", sa.String(255)),
        sa.Column("first_name", sa.Text()),
        sa.Column("last_name", sa.Text()),
        sa.Column("primary_email_address", sa.Text()),
        sa.Column("primary_phone_number", sa.Text()),
        sa.Column("image_url", sa.Text()),
        sa.Column("banned", sa.Boolean()),
        sa.Column("locked", sa.Boolean()),
        sa.Column("public_metadata", JSON),
        sa.Column("private_metadata", JSON),
        sa.Column("unsafe_metadata", JSON),
        _ts("last_sign_in_at"),
        _ts("last_active_at"),
        *_versioned(),
        sa.Column("raw", JSON),
        indexed=("external_id", "primary_email_address"),
    )
    _identifier("clerk_email_addresses", "email_address")
    _identifier("clerk_phone_numbers", "phone_number")
    _identifier(
        "clerk_external_accounts",
        "email_address",
        sa.Column("provider", sa.String(128)),
        sa.Column("provider_user_id", sa.Text()),
        sa.Column("username", sa.Text()),
    )
    _table(
        "clerk_organizations",
        sa.Column("name", sa.Text()),
        sa.Column("slug", sa.String(255)),
        sa.Column("image_url", sa.Text()),
        sa.Column("members_count", sa.Integer()),
        sa.Column("max_allowed_memberships", sa.Integer()),
        _id("created_by"),
        sa.Column("public_metadata", JSON),
        sa.Column("private_metadata", JSON),
        *_versioned(),
        sa.Column("raw", JSON),
        indexed=("slug", "created_by"),
    )
    _table(
        "clerk_organization_memberships",
        _id("organization_id", nullable=False),
        _id("user_id", nullable=False),
        sa.Column("role", sa.String(255)),
        sa.Column("role_name", sa.Text()),
        sa.Column("permissions", JSON),
        sa.Column("public_metadata", JSON),
        sa.Column("private_metadata", JSON),
        *_versioned(),
        sa.Column("raw", JSON),
        indexed=("organization_id", "user_id"),
    )
    live = sa.text("deleted_at IS NULL")
    op.create_index(
        "uq_clerk_organization_memberships_live_pair",
        "clerk_organization_memberships",
        ["organization_id", "user_id"],
        unique=True,
        postgresql_where=live,
        sqlite_where=live,
    )
    _table(
        "clerk_organization_invitations",
        _id("organization_id"),
        sa.Column("email_address", sa.Text()),
        sa.Column("role", sa.String(255)),
        sa.Column("status", sa.String(32)),
        _id("user_id"),
        _id("inviter_id"),
        sa.Column("public_metadata", JSON),
        sa.Column("private_metadata", JSON),
        _ts("expires_at"),
        *_versioned(),
        sa.Column("raw", JSON),
        indexed=("organization_id", "email_address", "user_id"),
    )
    _table(
        "clerk_organization_domains",
        _id("organization_id"),
        sa.Column("name", sa.String(255)),
        sa.Column("enrollment_mode", sa.String(64)),
        sa.Column("verification_status", sa.String(64)),
        *_versioned(),
        sa.Column("raw", JSON),
        indexed=("organization_id", "name"),
    )
    op.create_table(
        "clerk_replica_inbox",
        sa.Column("svix_id", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("body", sa.Text()),
        sa.Column("event_timestamp_ms", sa.BigInteger()),
        _id("object_id"),
        _ts("received_at", nullable=False),
        _ts("applied_at"),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.PrimaryKeyConstraint("svix_id", name="pk_clerk_replica_inbox"),
    )
    op.create_index(
        "ix_clerk_replica_inbox_status_received_at",
        "clerk_replica_inbox",
        ["status", "received_at"],
    )


def downgrade() -> None:
    for name in (
        "clerk_replica_inbox",
        "clerk_organization_domains",
        "clerk_organization_invitations",
        "clerk_organization_memberships",
        "clerk_organizations",
        "clerk_external_accounts",
        "clerk_phone_numbers",
        "clerk_email_addresses",
        "clerk_users",
    ):
        op.drop_table(name)
