"""Instances kept apart and inviters erased (issue 27).

One Clerk instance per name and one name per instance: `clerk_replica_instances` says how
each binding was made (`bound_by`: reconcile's key, or the first delivery) and an instance id
is unique. Rows recorded before were found by reconcile; where two names recorded one id, the
most recently identified keeps it (the next reconcile of the other says what it is now).

Invitations are indexed by `inviter_id`: a deleted inviter's data leaves every invitation.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clerk_replica_instances") as batch:
        batch.add_column(sa.Column("bound_by", sa.String(16)))
    op.execute("UPDATE clerk_replica_instances SET bound_by = 'reconcile'")
    op.execute(
        "DELETE FROM clerk_replica_instances WHERE EXISTS (SELECT 1 FROM clerk_replica_instances "
        "AS newer WHERE newer.instance_id = clerk_replica_instances.instance_id AND "
        "(newer.identified_at, newer.name) > "
        "(clerk_replica_instances.identified_at, clerk_replica_instances.name))"
    )
    op.create_index(
        "uq_clerk_replica_instances_instance_id",
        "clerk_replica_instances",
        ["instance_id"],
        unique=True,
    )
    op.create_index(
        "ix_clerk_organization_invitations_inviter_id",
        "clerk_organization_invitations",
        ["inviter_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_clerk_organization_invitations_inviter_id", "clerk_organization_invitations")
    op.drop_index("uq_clerk_replica_instances_instance_id", "clerk_replica_instances")
    with op.batch_alter_table("clerk_replica_instances") as batch:
        batch.drop_column("bound_by")
