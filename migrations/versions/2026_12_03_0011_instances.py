"""Several Clerk instances in one replica: `instance_id` on every replica table (indexed), the
instance name on inbox rows and reconcile runs, and the instances reconcile has identified.

Rows already stored take the instance of their events where that needs no API call: when the
inbox bodies still kept name exactly one instance (a single-instance install), every row gets
it. Otherwise they stay NULL until the next event or reconcile run writes them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPLICA_TABLES = (
    "clerk_organizations",
    "clerk_users",
    "clerk_email_addresses",
    "clerk_phone_numbers",
    "clerk_external_accounts",
    "clerk_web3_wallets",
    "clerk_enterprise_accounts",
    "clerk_permissions",
    "clerk_roles",
    "clerk_role_permissions",
    "clerk_waitlist_entries",
    "clerk_billing_plans",
    "clerk_billing_subscription_items",
    "clerk_billing_subscriptions",
    "clerk_billing_payment_attempts",
    "clerk_organization_memberships",
    "clerk_organization_invitations",
    "clerk_organization_domains",
    "clerk_sessions",
)
# The most recent kept bodies read to name the instance of the rows already stored.
_BODIES_READ = 1000


def upgrade() -> None:
    for table in REPLICA_TABLES:
        op.add_column(table, sa.Column("instance_id", sa.Text()))
        op.create_index(f"ix_{table}_instance_id", table, ["instance_id"])
    op.add_column("clerk_replica_inbox", sa.Column("instance", sa.String(64)))
    op.add_column("clerk_replica_reconcile_runs", sa.Column("instance", sa.String(64)))
    op.create_table(
        "clerk_replica_instances",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("instance_id", sa.Text(), nullable=False),
        sa.Column("environment_type", sa.Text()),
        sa.Column("identified_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_clerk_replica_instances"),
    )
    _name_stored_rows()


def _name_stored_rows() -> None:
    bind = op.get_bind()
    bodies = bind.execute(
        sa.text(
            "SELECT body FROM clerk_replica_inbox WHERE body IS NOT NULL "
            "ORDER BY received_at DESC LIMIT :n"
        ),
        {"n": _BODIES_READ},
    ).scalars()
    found: set[str] = set()
    for body in bodies:
        try:
            instance = json.loads(body).get("instance_id")
        except (ValueError, AttributeError, RecursionError):
            continue  # not JSON, not an object, or nested past what the parser can read
        if isinstance(instance, str):
            found.add(instance)
    if len(found) != 1:
        return  # none known, or several: which row is whose is for the next writes to say
    (instance,) = found
    for table in REPLICA_TABLES:
        bind.execute(
            sa.text(f"UPDATE {table} SET instance_id = :i WHERE instance_id IS NULL"),
            {"i": instance},
        )


def downgrade() -> None:
    op.drop_table("clerk_replica_instances")
    with op.batch_alter_table("clerk_replica_reconcile_runs") as batch:
        batch.drop_column("instance")
    with op.batch_alter_table("clerk_replica_inbox") as batch:
        batch.drop_column("instance")
    for table in REPLICA_TABLES:
        op.drop_index(f"ix_{table}_instance_id", table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("instance_id")
