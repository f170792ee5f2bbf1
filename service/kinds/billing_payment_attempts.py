"""Billing payment attempts, from `paymentAttempt.*` events only (Clerk lists them per
statement, not instance-wide). `amount` and `currency` are the grand total's; the statement is
`statement_id`, which older API versions called `invoice_id`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Table, Text

from service.clerk import payloads as p
from service.clerk import rows as r
from service.clerk.payloads import Millis
from service.clerk.rows import RowOptions, Snapshot
from service.clerk.timestamps import from_ms
from service.db.types import JSONValue, UTCDateTime, metadata
from service.kinds.billing import Payer, payer_columns
from service.kinds.columns import instance_column, versioned_times
from service.kinds.declaration import Kind, Personal

billing_payment_attempts = Table(
    "clerk_billing_payment_attempts",
    metadata,
    Column("id", Text, primary_key=True),
    Column("payment_id", Text, index=True),
    Column("statement_id", Text, index=True),
    Column("status", Text),
    Column("payer_id", Text, index=True),
    Column("user_id", Text, index=True),
    Column("organization_id", Text, index=True),
    Column("charge_type", Text),
    Column("amount", BigInteger),
    Column("currency", Text),
    Column("paid_at", UTCDateTime),
    Column("failed_at", UTCDateTime),
    Column("billing_date", UTCDateTime),
    *versioned_times(),
    Column("raw", JSONValue),
    instance_column(),
)


class Amount(p.Model):
    amount: int | None = None
    currency: str | None = None


class Totals(p.Model):
    grand_total: Amount | None = None


class PaymentAttempt(p.Model):
    id: str
    payment_id: str | None = None
    statement_id: str | None = None
    invoice_id: str | None = None
    status: str | None = None
    payer_id: str | None = None
    payer: Payer | None = None
    charge_type: str | None = None
    totals: Totals | None = None
    paid_at: Millis | None = None
    failed_at: Millis | None = None
    billing_date: Millis | None = None
    created_at: Millis
    updated_at: Millis


def build(data: dict[str, Any], options: RowOptions) -> Snapshot:
    attempt = p.parse(PaymentAttempt, data)
    total = (attempt.totals.grand_total if attempt.totals else None) or Amount()
    return Snapshot(
        {
            "id": attempt.id,
            "payment_id": attempt.payment_id,
            "statement_id": attempt.statement_id or attempt.invoice_id,
            "status": attempt.status,
            **payer_columns(attempt.payer, attempt.payer_id),
            "charge_type": attempt.charge_type,
            "amount": total.amount,
            "currency": total.currency,
            "paid_at": from_ms(attempt.paid_at),
            "failed_at": from_ms(attempt.failed_at),
            "billing_date": from_ms(attempt.billing_date),
            **r.times(attempt.created_at, attempt.updated_at),
            "raw": r.raw(data, options),
        }
    )


KIND = Kind(
    name="billing_payment_attempts",
    order=11,
    table=billing_payment_attempts,
    build=build,
    upserts=("paymentAttempt.created", "paymentAttempt.updated"),
    personal=Personal("user_id", "users", (billing_payment_attempts.c.raw,)),
)
