"""Reconcile run modes: each run records whether it listed everything (full) or only what
changed (incremental), so the next run knows when the last full one completed. Runs from
before modes were full listings: they keep NULL, read as full.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("clerk_replica_reconcile_runs", sa.Column("mode", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("clerk_replica_reconcile_runs") as batch:
        batch.drop_column("mode")
