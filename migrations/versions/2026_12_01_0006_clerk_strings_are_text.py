"""Every string Clerk sends is `text`: the spec sets no length limits, and one longer value
aborted a PostgreSQL write (SQLite never enforced them, so the two disagreed). A membership's
user may be unknown (the spec does not require `public_user_data`).

On PostgreSQL varchar -> text needs no table rewrite. SQLite stores both as TEXT already; its
tables are rebuilt only so that the declared types match the models.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The columns this migration widens, with their old lengths (for the downgrade).
_WIDENED: dict[str, tuple[tuple[str, int], ...]] = {
    "clerk_organizations": (("id", 255), ("slug", 255), ("created_by", 255)),
    "clerk_users": (("id", 255), ("external_id", 255), ("username", 255)),
    "clerk_email_addresses": (
        ("id", 255),
        ("user_id", 255),
        ("verification_status", 64),
        ("verification_strategy", 64),
    ),
    "clerk_phone_numbers": (
        ("id", 255),
        ("user_id", 255),
        ("verification_status", 64),
        ("verification_strategy", 64),
    ),
    "clerk_external_accounts": (
        ("id", 255),
        ("user_id", 255),
        ("provider", 128),
        ("verification_status", 64),
        ("verification_strategy", 64),
    ),
    "clerk_organization_memberships": (
        ("id", 255),
        ("organization_id", 255),
        ("user_id", 255),
        ("role", 255),
    ),
    "clerk_organization_invitations": (
        ("id", 255),
        ("organization_id", 255),
        ("role", 255),
        ("status", 32),
        ("user_id", 255),
        ("inviter_id", 255),
    ),
    "clerk_organization_domains": (
        ("id", 255),
        ("organization_id", 255),
        ("name", 255),
        ("enrollment_mode", 64),
        ("verification_status", 64),
    ),
    "clerk_replica_reconcile_progress": (("cursor", 255),),
    "clerk_replica_reconcile_seen": (("object_id", 255),),
}
_MEMBERSHIPS = "clerk_organization_memberships"


def _alter(to_text: bool) -> None:
    for table, columns in _WIDENED.items():
        with op.batch_alter_table(table) as batch:
            for name, length in columns:
                old, new = sa.String(length), sa.Text()
                if not to_text:
                    old, new = new, old
                if table == _MEMBERSHIPS and name == "user_id":
                    batch.alter_column(name, existing_type=old, type_=new, nullable=to_text)
                else:
                    batch.alter_column(name, existing_type=old, type_=new)


def upgrade() -> None:
    _alter(to_text=True)


def downgrade() -> None:
    _alter(to_text=False)
