"""Billing's shared parts: the payer's columns ("" is NULL) and the version of a timeless object."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.clerk.payloads import PayloadError
from service.clerk.rows import RowOptions
from service.kinds.billing import Payer, payer_columns, version


def test_the_absent_payer_is_null_not_empty() -> None:
    org = Payer(id="cpayer_1", user_id="", organization_id="org_1")
    assert payer_columns(org, None) == {
        "payer_id": "cpayer_1",
        "user_id": None,
        "organization_id": "org_1",
    }
    assert payer_columns(None, "") == {"payer_id": None, "user_id": None, "organization_id": None}


def test_a_timeless_object_takes_the_listing_time_or_fails() -> None:
    listed = datetime(2026, 12, 1, tzinfo=UTC)
    assert version(None, RowOptions(listed_at=listed)) == listed
    assert version(1_716_883_200_000, RowOptions(listed_at=listed)).year == 2024
    with pytest.raises(PayloadError, match="updated_at"):
        version(None, RowOptions())
