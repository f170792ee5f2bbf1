"""Inbox: per-event retry time, so a batch claim skips an event that is backing off.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clerk_replica_inbox") as batch:
        batch.add_column(sa.Column("retry_after", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clerk_replica_inbox") as batch:
        batch.drop_column("retry_after")
