"""More Clerk kinds: roles and the permissions they grant, permissions, waitlist entries,
sessions, and a user's web3 wallets and enterprise accounts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TABLES = (
    "clerk_roles",
    "clerk_role_permissions",
    "clerk_permissions",
    "clerk_waitlist_entries",
    "clerk_sessions",
    "clerk_web3_wallets",
    "clerk_enterprise_accounts",
)


def _text(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.Text(), nullable=nullable)


def _ts(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def _versioned() -> list[sa.Column[object]]:
    return [_ts("created_at"), _ts("updated_at"), _ts("deleted_at")]


def _table(name: str, *columns: sa.Column[object], indexed: Sequence[str] = ()) -> None:
    op.create_table(
        name,
        _text("id", nullable=False),
        *columns,
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
    )
    for column in indexed:
        op.create_index(f"ix_{name}_{column}", name, [column])


def upgrade() -> None:
    _table(
        "clerk_roles",
        _text("key"),
        _text("name"),
        _text("description"),
        sa.Column("is_creator_eligible", sa.Boolean()),
        *_versioned(),
        sa.Column("raw", JSON),
        indexed=("key",),
    )
    _table(
        "clerk_role_permissions",
        _text("role_id", nullable=False),
        _text("permission_id", nullable=False),
        _text("permission_key"),
        indexed=("role_id", "permission_id", "permission_key"),
    )
    _table(
        "clerk_permissions",
        _text("key"),
        _text("name"),
        _text("description"),
        _text("type"),
        *_versioned(),
        sa.Column("raw", JSON),
        indexed=("key",),
    )
    _table(
        "clerk_waitlist_entries",
        _text("email_address"),
        _text("status"),
        sa.Column("is_locked", sa.Boolean()),
        _text("invitation_id"),
        *_versioned(),
        sa.Column("raw", JSON),
        indexed=("email_address", "invitation_id"),
    )
    unerased = "deleted_at IS NOT NULL AND raw IS NOT NULL"
    op.create_index(
        "ix_clerk_waitlist_entries_unerased",
        "clerk_waitlist_entries",
        ["id"],
        postgresql_where=sa.text(unerased),
        sqlite_where=sa.text(unerased),
    )
    _table(
        "clerk_sessions",
        _text("user_id"),
        _text("client_id"),
        _text("status"),
        _ts("last_active_at"),
        _text("last_active_organization_id"),
        _ts("expire_at"),
        _ts("abandon_at"),
        *_versioned(),
        sa.Column("raw", JSON),
        indexed=("user_id", "client_id", "last_active_organization_id"),
    )
    _table(
        "clerk_web3_wallets",
        _text("user_id", nullable=False),
        _text("web3_wallet"),
        _text("verification_status"),
        _text("verification_strategy"),
        sa.Column("is_primary", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.Column("raw", JSON),
        indexed=("user_id", "web3_wallet"),
    )
    _table(
        "clerk_enterprise_accounts",
        _text("user_id", nullable=False),
        _text("email_address"),
        _text("provider"),
        _text("protocol"),
        sa.Column("active", sa.Boolean()),
        _text("provider_user_id"),
        _text("enterprise_connection_id"),
        _text("verification_status"),
        _text("verification_strategy"),
        _ts("last_authenticated_at"),
        sa.Column("raw", JSON),
        indexed=("user_id", "email_address", "enterprise_connection_id"),
    )


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
