"""The shape every kind's rows share: raw without private metadata when told, a Snapshot repr
that shows no values."""

from __future__ import annotations

from datetime import UTC, datetime

from service.clerk.payloads import Verification
from service.clerk.rows import (
    RowOptions,
    Snapshot,
    private,
    raw,
    raw_items,
    times,
    verification_columns,
)
from tests.support import clerk_payloads as cp
from tests.support import tables as t

KEEP, DROP = RowOptions(), RowOptions(store_private_metadata=False)


def test_raw_keeps_everything_by_default() -> None:
    data = cp.user()
    assert raw(data, KEEP) is data


def test_raw_drops_private_metadata_only_when_configured() -> None:
    data = cp.user()
    dropped = raw(data, DROP)
    assert "private_metadata" not in dropped
    assert {k: v for k, v in data.items() if k != "private_metadata"} == dropped
    assert data["private_metadata"] == {"plan": "secret"}  # the payload itself is untouched
    without = {"id": "x", "public_metadata": {}}
    assert raw(without, DROP) is without


def test_private_keeps_or_drops() -> None:
    assert private({"a": 1}, KEEP) == {"a": 1}
    assert private({"a": 1}, DROP) is None


def test_snapshot_repr_names_the_id_only() -> None:
    row = {"id": "user_1", "first_name": "Jane", "primary_email_address": "jane@x.example"}
    snap = Snapshot(row, {t.email_addresses: [{"id": "idn_1", "email_address": "jane@x.example"}]})
    assert repr(snap) == "Snapshot(id='user_1')"
    assert "Jane" not in repr(snap) and "jane@" not in repr(snap) and "Jane" not in str(snap)
    assert snap.id == "user_1"
    assert dict(Snapshot({"id": "x"}).children) == {}


def test_times_and_verification_columns() -> None:
    ended = datetime(2025, 1, 1, tzinfo=UTC)
    assert times(cp.T0, cp.T0 + 1000, ended) == {
        "created_at": datetime(2024, 5, 28, 8, 0, tzinfo=UTC),
        "updated_at": datetime(2024, 5, 28, 8, 0, 1, tzinfo=UTC),
        "deleted_at": ended,
    }
    assert verification_columns(None) == {
        "verification_status": None,
        "verification_strategy": None,
    }
    assert verification_columns(Verification(status="verified", strategy="email_code")) == {
        "verification_status": "verified",
        "verification_strategy": "email_code",
    }


def test_raw_items_by_id_skipping_what_has_no_id() -> None:
    data = {"email_addresses": [{"id": "a", "x": 1}, {"x": 2}, "junk", {"id": 3}]}
    assert raw_items(data, "email_addresses") == {"a": {"id": "a", "x": 1}}
    assert raw_items({"email_addresses": None}, "email_addresses") == {}
    assert raw_items({}, "phone_numbers") == {}
