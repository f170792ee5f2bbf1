"""An organization payload -> its row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from service.clerk.payloads import PayloadError
from service.clerk.rows import RowOptions
from service.kinds.organizations import build
from tests.support import clerk_payloads as cp
from tests.support import tables as t

T0 = datetime.fromtimestamp(cp.T0 / 1000, tz=UTC)


def test_build_fills_the_row() -> None:
    data = cp.organization(members_count=3, updated_at=cp.T0 + 1000)
    snap = build(data, RowOptions())
    assert snap.id == "org_29w9IfBrPmcpi0IeBVaKtA7R94W"
    row = snap.row
    assert (row["name"], row["slug"], row["members_count"]) == ("Acme Inc", "acme-inc", 3)
    assert row["max_allowed_memberships"] == 5
    assert row["created_by"] == "user_29w83sxmDNGwOuEthce5gg56FcC"
    assert row["created_at"] == T0 and row["updated_at"] == datetime(
        2024, 5, 28, 8, 0, 1, tzinfo=UTC
    )
    assert row["private_metadata"] == {"billing": "secret"} and row["raw"] is data
    assert set(row) == {c.name for c in t.organizations.columns}
    assert dict(snap.children) == {}


def test_absent_optional_fields_are_null() -> None:
    snap = build({"id": "org_1", "created_at": cp.T0, "updated_at": cp.T0}, RowOptions())
    nulls = {k for k, v in snap.row.items() if v is None}
    expected = {c.name for c in t.organizations.columns} - {"id", "created_at", "updated_at", "raw"}
    assert nulls == expected


@pytest.mark.parametrize(
    "broken", [{"created_at": None}, {"members_count": "many"}, {"id": None}, {"name": 3}]
)
def test_what_cannot_apply_is_a_payload_error(broken: dict[str, Any]) -> None:
    with pytest.raises(PayloadError, match="Organization payload does not fit"):
        build(cp.organization(**broken), RowOptions())


def test_private_metadata_kept_or_dropped() -> None:
    dropped = build(cp.organization(), RowOptions(store_private_metadata=False))
    assert dropped.row["private_metadata"] is None
    assert "private_metadata" not in dropped.row["raw"]
    assert build(cp.organization(), RowOptions()).row["raw"]["private_metadata"] == {
        "billing": "secret"
    }
