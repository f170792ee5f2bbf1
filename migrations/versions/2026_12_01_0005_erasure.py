"""Erasure: indexes that find deleted users still holding personal data, and the events about
an object that still hold a body.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNERASED = "deleted_at IS NOT NULL AND raw IS NOT NULL"
_BODIES = "body IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_clerk_users_unerased",
        "clerk_users",
        ["id"],
        postgresql_where=sa.text(_UNERASED),
        sqlite_where=sa.text(_UNERASED),
    )
    op.create_index(
        "ix_clerk_replica_inbox_bodies_by_object",
        "clerk_replica_inbox",
        ["object_id"],
        postgresql_where=sa.text(_BODIES),
        sqlite_where=sa.text(_BODIES),
    )


def downgrade() -> None:
    op.drop_index("ix_clerk_replica_inbox_bodies_by_object", table_name="clerk_replica_inbox")
    op.drop_index("ix_clerk_users_unerased", table_name="clerk_users")
