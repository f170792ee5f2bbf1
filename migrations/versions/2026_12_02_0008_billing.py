"""Billing: plans, subscriptions, subscription items and payment attempts.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TABLES = (
    "clerk_billing_plans",
    "clerk_billing_subscription_items",
    "clerk_billing_subscriptions",
    "clerk_billing_payment_attempts",
)
_PAYER = ("payer_id", "user_id", "organization_id")


def _text(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.Text(), nullable=nullable)


def _ts(*names: str) -> list[sa.Column[object]]:
    return [sa.Column(name, sa.DateTime(timezone=True), nullable=True) for name in names]


def _table(name: str, *columns: sa.Column[object], indexed: Sequence[str] = ()) -> None:
    op.create_table(
        name,
        _text("id", nullable=False),
        *columns,
        *_ts("created_at", "updated_at", "deleted_at"),
        sa.Column("raw", JSON),
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
    )
    for column in indexed:
        op.create_index(f"ix_{name}_{column}", name, [column])


def upgrade() -> None:
    _table(
        "clerk_billing_plans",
        _text("slug"),
        _text("name"),
        sa.Column("amount", sa.BigInteger()),
        _text("currency"),
        sa.Column("is_recurring", sa.Boolean()),
        indexed=("slug",),
    )
    _table(
        "clerk_billing_subscription_items",
        _text("subscription_id"),
        _text("status"),
        _text("plan_id"),
        _text("plan_slug"),
        *(_text(c) for c in _PAYER),
        sa.Column("is_free_trial", sa.Boolean()),
        _text("interval"),
        *_ts("period_start", "period_end", "canceled_at", "ended_at"),
        indexed=("subscription_id", "plan_id", *_PAYER),
    )
    _table(
        "clerk_billing_subscriptions",
        _text("status"),
        *(_text(c) for c in _PAYER),
        *_ts("active_at", "past_due_at", "canceled_at", "ended_at"),
        indexed=_PAYER,
    )
    _table(
        "clerk_billing_payment_attempts",
        _text("payment_id"),
        _text("statement_id"),
        _text("status"),
        *(_text(c) for c in _PAYER),
        _text("charge_type"),
        sa.Column("amount", sa.BigInteger()),
        _text("currency"),
        *_ts("paid_at", "failed_at", "billing_date"),
        indexed=("payment_id", "statement_id", *_PAYER),
    )


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
