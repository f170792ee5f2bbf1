"""A user payload -> its row and the email addresses, phone numbers and accounts it owns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from service.clerk.payloads import PayloadError
from service.clerk.rows import RowOptions
from service.kinds import writes
from service.kinds.users import KIND, build
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import one, rows

T0 = datetime.fromtimestamp(cp.T0 / 1000, tz=UTC)
U = "user_29w83sxmDNGwOuEthce5gg56FcC"


def full() -> dict[str, Any]:
    return cp.user(
        emails=[cp.email("idn_a", "a@x.example"), cp.email("idn_b", "b@x.example", "unverified")],
        primary_email_id="idn_b",
        phone_numbers=[cp.phone("idn_p", "+15555550100")],
        primary_phone_number_id="idn_p",
        external_accounts=[cp.external_account("eac_1", identification_id="idn_b")],
        username="jane",
        external_id="ext-1",
        banned=False,
        locked=True,
    )


def test_build_fills_the_user_row() -> None:
    data = full()
    snap = build(data, RowOptions())
    assert snap.id == U
    row = snap.row
    assert row["primary_email_address"] == "b@x.example"
    assert row["primary_phone_number"] == "+15555550100"
    assert (row["username"], row["external_id"], row["first_name"]) == ("jane", "ext-1", "Example")
    assert (row["banned"], row["locked"]) == (False, True)
    assert row["created_at"] == row["updated_at"] == row["last_sign_in_at"] == T0
    assert row["deleted_at"] is None
    assert row["private_metadata"] == {"plan": "secret"} and row["raw"] is data
    assert set(row) == {c.name for c in t.users.columns}


def test_build_fills_the_owned_rows() -> None:
    snap = build(full(), RowOptions())
    emails = snap.children[t.email_addresses]
    assert [(e["id"], e["is_primary"], e["verification_status"]) for e in emails] == [
        ("idn_a", False, "verified"),
        ("idn_b", True, "unverified"),
    ]
    assert all(e["user_id"] == U and e["raw"]["id"] == e["id"] for e in emails)
    (phone,) = snap.children[t.phone_numbers]
    assert (phone["phone_number"], phone["is_primary"]) == ("+15555550100", True)
    (account,) = snap.children[t.external_accounts]
    assert (account["provider"], account["email_address"], account["is_primary"]) == (
        "oauth_google",
        "jane@gmail.example",
        True,
    )
    for table, children in snap.children.items():
        assert all(set(c) == {col.name for col in table.columns} for c in children)


def test_absent_optional_fields_are_null() -> None:
    snap = build({"id": "user_1", "created_at": cp.T0, "updated_at": cp.T0}, RowOptions())
    nulls = {k for k, v in snap.row.items() if v is None}
    assert nulls == {c.name for c in t.users.columns} - {"id", "created_at", "updated_at", "raw"}
    assert all(children == [] for children in snap.children.values())


def test_a_primary_id_naming_no_identifier_gives_no_primary() -> None:
    snap = build(cp.user(primary_email_id="idn_gone"), RowOptions())
    assert snap.row["primary_email_address"] is None
    assert not any(e["is_primary"] for e in snap.children[t.email_addresses])


@pytest.mark.parametrize(
    "broken",
    [
        {"created_at": None},
        {"updated_at": "yesterday"},
        {"id": 7},
        {"email_addresses": [{"id": "idn_1"}]},  # no email_address: required by the spec
    ],
)
def test_what_cannot_apply_is_a_payload_error(broken: dict[str, Any]) -> None:
    with pytest.raises(PayloadError, match="User payload does not fit"):
        build(cp.user(**broken), RowOptions())


def test_private_metadata_kept_or_dropped() -> None:
    kept = build(cp.user(), RowOptions())
    dropped = build(cp.user(), RowOptions(store_private_metadata=False))
    assert kept.row["private_metadata"] == {"plan": "secret"}
    assert dropped.row["private_metadata"] is None
    assert "private_metadata" not in dropped.row["raw"]
    assert dropped.row["public_metadata"] == {}


async def test_a_built_user_is_stored_with_its_identifiers(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        assert await writes.upsert(conn, KIND, [build(full(), RowOptions())]) == {U}
    assert (await one(engine, t.users, U))["primary_email_address"] == "b@x.example"
    assert [e["id"] for e in await rows(engine, t.email_addresses, user_id=U)] == ["idn_a", "idn_b"]
    assert len(await rows(engine, t.external_accounts, user_id=U)) == 1


def test_identifiers_without_an_id_are_kept_only_in_raw() -> None:
    # The spec does not require an email address's or phone number's id: the user applies,
    # and an identifier without one (it could not be a row of its own) stays in `raw`.
    data = cp.user(
        emails=[{"email_address": "noid@example.org"}, cp.email("idn_1", "one@example.org")],
        phone_numbers=[{"phone_number": "+15555550100"}],
        primary_email_id="idn_1",
    )
    snap = build(data, RowOptions())
    assert [e["id"] for e in snap.children[t.email_addresses]] == ["idn_1"]
    assert snap.children[t.phone_numbers] == []
    assert snap.row["primary_email_address"] == "one@example.org"
    assert snap.row["raw"]["email_addresses"][0]["email_address"] == "noid@example.org"


async def test_long_strings_are_stored_whole(engine: AsyncEngine) -> None:
    # No length limits in the spec, none in the tables (PostgreSQL enforced varchar(255)).
    long = "x" * 1000
    data = cp.user(username=long, external_id=long)
    async with engine.begin() as conn:
        await writes.upsert(conn, KIND, [build(data, RowOptions())])
    user = await one(engine, t.users, U)
    assert (user["username"], user["external_id"]) == (long, long)
