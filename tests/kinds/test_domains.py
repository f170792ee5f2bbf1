"""A domain payload -> its row; verification from the affiliation check when there is one."""

from __future__ import annotations

import pytest

from service.clerk.payloads import PayloadError
from service.clerk.rows import RowOptions
from service.kinds.domains import build
from tests.support import clerk_payloads as cp
from tests.support import tables as t


def test_build_fills_the_row() -> None:
    data = cp.domain()
    data["affiliation_verification"] = {"status": "unverified", "strategy": "email_code"}
    row = build(data, RowOptions()).row
    assert row["id"] == "orgdmn_29w9IfBrPmcpi0IeBVaKtA7R94W"
    assert (row["organization_id"], row["name"]) == (
        "org_29w9IfBrPmcpi0IeBVaKtA7R94W",
        "acme.example",
    )
    assert row["enrollment_mode"] == "automatic_invitation"
    assert row["verification_status"] == "unverified"  # the affiliation check, first
    assert row["raw"] is data and row["deleted_at"] is None
    assert set(row) == {c.name for c in t.organization_domains.columns}


def test_verification_falls_back_to_the_domain_check() -> None:
    data = cp.domain()
    data["affiliation_verification"] = None
    data["verification"] = {"status": "pending"}
    assert build(data, RowOptions()).row["verification_status"] == "pending"


def test_absent_optional_fields_are_null() -> None:
    row = build({"id": "orgdmn_1", "created_at": 1, "updated_at": 1}, RowOptions()).row
    nulls = {k for k, v in row.items() if v is None}
    assert nulls == {c.name for c in t.organization_domains.columns} - {
        "id",
        "created_at",
        "updated_at",
        "raw",
    }


@pytest.mark.parametrize("broken", [{"created_at": None}, {"id": 1}, {"verification": "yes"}])
def test_what_cannot_apply_is_a_payload_error(broken: dict[str, object]) -> None:
    with pytest.raises(PayloadError, match="Domain payload does not fit"):
        build({**cp.domain(), **broken}, RowOptions())


def test_private_metadata_option_leaves_a_domain_alone() -> None:
    data = {**cp.domain(), "private_metadata": {"x": 1}}
    assert build(data, RowOptions()).row["raw"]["private_metadata"] == {"x": 1}
    assert (
        "private_metadata" not in build(data, RowOptions(store_private_metadata=False)).row["raw"]
    )
