"""Inbox retention: indexes that find kept bodies and settled rows by when they were settled.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEPT_BODIES = "status = 'applied' AND body IS NOT NULL"
_SETTLED = "status IN ('applied', 'ignored')"


def upgrade() -> None:
    op.create_index(
        "ix_clerk_replica_inbox_kept_bodies",
        "clerk_replica_inbox",
        ["applied_at"],
        postgresql_where=sa.text(_KEPT_BODIES),
        sqlite_where=sa.text(_KEPT_BODIES),
    )
    op.create_index(
        "ix_clerk_replica_inbox_settled",
        "clerk_replica_inbox",
        ["applied_at"],
        postgresql_where=sa.text(_SETTLED),
        sqlite_where=sa.text(_SETTLED),
    )


def downgrade() -> None:
    op.drop_index("ix_clerk_replica_inbox_settled", table_name="clerk_replica_inbox")
    op.drop_index("ix_clerk_replica_inbox_kept_bodies", table_name="clerk_replica_inbox")
