"""The change feed: clerk_replica_changes, and the sources a writing transaction names (the
triggers are rebuilt at head by migrations/env.py, service/feed/triggers.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clerk_replica_changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("instance_id", sa.Text()),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("object_id", sa.Text(), nullable=False),
        sa.Column("op", sa.Text(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("svix_id", sa.Text()),
        sa.Column("run_id", sa.Text()),
        sa.PrimaryKeyConstraint("seq", name="pk_clerk_replica_changes"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_clerk_replica_changes_changed_at", "clerk_replica_changes", ["changed_at"])
    op.create_table(
        "clerk_replica_change_sources",
        sa.Column("object_id", sa.Text(), nullable=False),
        sa.Column("instance_id", sa.Text()),
        sa.Column("svix_id", sa.Text()),
        sa.Column("run_id", sa.Text()),
        sa.PrimaryKeyConstraint("object_id", name="pk_clerk_replica_change_sources"),
    )


def downgrade() -> None:
    op.drop_table("clerk_replica_change_sources")
    op.drop_index("ix_clerk_replica_changes_changed_at", "clerk_replica_changes")
    op.drop_table("clerk_replica_changes")
