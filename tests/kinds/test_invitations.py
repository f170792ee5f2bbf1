"""An invitation payload -> its row; its organization from either field Clerk uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from service.clerk.payloads import PayloadError
from service.clerk.rows import RowOptions
from service.kinds.invitations import build
from tests.support import clerk_payloads as cp
from tests.support import tables as t

ORG = "org_29w9IfBrPmcpi0IeBVaKtA7R94W"


def test_build_fills_the_row() -> None:
    data = cp.invitation(status="accepted", user_id="user_1", inviter_id="user_2")
    row = build(data, RowOptions()).row
    assert (row["organization_id"], row["email_address"], row["role"]) == (
        ORG,
        "invitee@acme.example",
        "org:member",
    )
    assert (row["status"], row["user_id"], row["inviter_id"]) == ("accepted", "user_1", "user_2")
    assert row["expires_at"] == datetime(2024, 6, 27, 8, 0, tzinfo=UTC)
    assert row["deleted_at"] is None and row["raw"] is data
    assert set(row) == {c.name for c in t.organization_invitations.columns}


def test_the_organization_may_come_as_public_organization_data() -> None:
    data = cp.invitation(organization_id=None, public_organization_data={"id": "org_other"})
    assert build(data, RowOptions()).row["organization_id"] == "org_other"


def test_absent_optional_fields_are_null() -> None:
    data = {"id": "orginv_1", "organization_id": ORG, "created_at": 1, "updated_at": 2}
    nulls = {k for k, v in build(data, RowOptions()).row.items() if v is None}
    kept = {"id", "organization_id", "created_at", "updated_at", "raw"}
    assert nulls == {c.name for c in t.organization_invitations.columns} - kept


@pytest.mark.parametrize(
    ("broken", "field"),
    [
        ({"created_at": None}, "created_at"),
        ({"expires_at": -5}, "expires_at"),
    ],
)
def test_what_cannot_apply_is_a_payload_error(broken: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError, match=field) as caught:
        build(cp.invitation(**broken), RowOptions())
    assert "invitee@acme.example" not in str(caught.value)


def test_an_invitation_naming_no_organization_is_stored_without_one() -> None:
    # The spec does not require organization_id; a later snapshot or reconcile fills it in.
    row = build(cp.invitation(organization_id=None), RowOptions()).row
    assert row["organization_id"] is None and row["email_address"] == "invitee@acme.example"


def test_private_metadata_kept_or_dropped() -> None:
    data = cp.invitation(private_metadata={"note": "vip"})
    assert build(data, RowOptions()).row["private_metadata"] == {"note": "vip"}
    dropped = build(data, RowOptions(store_private_metadata=False)).row
    assert dropped["private_metadata"] is None and "private_metadata" not in dropped["raw"]
