"""One word for kinds (issue 29): reconcile's bookkeeping says `kind` where it said `resource`.

The runs' `resources` column becomes `kinds`; the `resource` column of the progress, segments
and seen tables becomes `kind`. Stored run summaries and progress counts name each pass's kind
under the key `kind` instead of `resource`, so old and new runs read alike.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
RUNS = "clerk_replica_reconcile_runs"
PASS_TABLES = (
    "clerk_replica_reconcile_progress",
    "clerk_replica_reconcile_segments",
    "clerk_replica_reconcile_seen",
)


def _renamed(counts: Any, old: str, new: str) -> Any:
    """One pass's counts with the key `old` renamed `new` (anything else as it was)."""
    if not isinstance(counts, dict) or old not in counts:
        return counts
    return {(new if key == old else key): value for key, value in counts.items()}


def _rename_keys(old: str, new: str) -> None:
    """Rename the pass key in every run summary (per kind) and every progress row's counts."""
    conn = op.get_bind()
    runs = sa.table(RUNS, sa.column("id", sa.Integer()), sa.column("summary", JSON))
    for run_id, summary in conn.execute(sa.select(runs.c.id, runs.c.summary)).all():
        if not isinstance(summary, dict):
            continue
        changed = {name: _renamed(counts, old, new) for name, counts in summary.items()}
        if changed != summary:
            conn.execute(sa.update(runs).where(runs.c.id == run_id).values(summary=changed))
    progress = sa.table(
        PASS_TABLES[0],
        sa.column("run_id", sa.Integer()),
        sa.column(new, sa.String()),
        sa.column("counts", JSON),
    )
    key = progress.c[new]  # the column is renamed before the keys
    for run_id, name, counts in conn.execute(
        sa.select(progress.c.run_id, key, progress.c.counts)
    ).all():
        changed = _renamed(counts, old, new)
        if changed != counts:
            conn.execute(
                sa.update(progress)
                .where(progress.c.run_id == run_id, key == name)
                .values(counts=changed)
            )


def _rename_columns(old: str, new: str) -> None:
    # RENAME COLUMN in place on both databases (SQLite since 3.25; RETURNING already needs
    # 3.35): keys, indexes and foreign keys follow, and no table is copied (seen ids can be many).
    op.alter_column(RUNS, f"{old}s", new_column_name=f"{new}s")
    for table in PASS_TABLES:
        op.alter_column(table, old, new_column_name=new)


def upgrade() -> None:
    _rename_columns("resource", "kind")
    _rename_keys("resource", "kind")


def downgrade() -> None:
    _rename_columns("kind", "resource")
    _rename_keys("kind", "resource")
