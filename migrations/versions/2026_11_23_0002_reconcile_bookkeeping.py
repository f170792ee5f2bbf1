"""Reconcile bookkeeping: runs, progress, seen ids, lease locks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
RUNS = "clerk_replica_reconcile_runs"


def _run_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["run_id"], [f"{RUNS}.id"], name=f"fk_{table}_run_id", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        RUNS,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resources", JSON, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("summary", JSON),
        sa.Column("error", sa.Text()),
        sa.PrimaryKeyConstraint("id", name=f"pk_{RUNS}"),
    )
    table = "clerk_replica_reconcile_progress"
    op.create_table(
        table,
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("resource", sa.String(32), nullable=False),
        sa.Column("pass_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cursor", sa.String(255)),
        sa.Column("offset", sa.Integer(), nullable=False),
        sa.Column("listed", sa.Boolean(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("counts", JSON, nullable=False),
        _run_fk(table),
        sa.PrimaryKeyConstraint("run_id", "resource", name=f"pk_{table}"),
    )
    table = "clerk_replica_reconcile_seen"
    op.create_table(
        table,
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("resource", sa.String(32), nullable=False),
        sa.Column("object_id", sa.String(255), nullable=False),
        _run_fk(table),
        sa.PrimaryKeyConstraint("run_id", "resource", "object_id", name=f"pk_{table}"),
    )
    op.create_table(
        "clerk_replica_locks",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_clerk_replica_locks"),
    )


def downgrade() -> None:
    for name in (
        "clerk_replica_locks",
        "clerk_replica_reconcile_seen",
        "clerk_replica_reconcile_progress",
        RUNS,
    ):
        op.drop_table(name)
