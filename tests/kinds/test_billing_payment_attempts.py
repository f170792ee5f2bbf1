"""Payment attempts: the grand total as amount, the statement by either name."""

from __future__ import annotations

import pytest

from service.clerk.rows import RowOptions
from service.kinds.billing_payment_attempts import build
from tests.support import clerk_payloads as cp
from tests.support import tables as t


@pytest.mark.parametrize("statement_key", ["statement_id", "invoice_id"])
def test_build_fills_the_row(statement_key: str) -> None:
    row = build(cp.payment_attempt(statement_key=statement_key), RowOptions()).row
    assert (row["amount"], row["currency"], row["statement_id"]) == (2200, "USD", "stmt_1")
    assert (row["user_id"], row["organization_id"], row["status"]) == ("user_1", None, "paid")
    assert set(row) == {c.name for c in t.billing_payment_attempts.columns}
