"""Reconcile segments: the parts of one list walked side by side, each with its checkpoint.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clerk_replica_reconcile_segments",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("resource", sa.String(32), nullable=False),
        sa.Column("segment", sa.Integer(), nullable=False),
        sa.Column("start_offset", sa.Integer(), nullable=False),
        sa.Column("end_offset", sa.Integer(), nullable=True),
        sa.Column("created_after_ms", sa.BigInteger(), nullable=True),
        sa.Column("created_before_ms", sa.BigInteger(), nullable=True),
        sa.Column("offset", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["clerk_replica_reconcile_runs.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "resource", "segment"),
    )


def downgrade() -> None:
    op.drop_table("clerk_replica_reconcile_segments")
