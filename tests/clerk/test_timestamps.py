"""Clerk's time units: the envelope timestamp in ms or seconds, resource times in ms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.clerk.timestamps import MAX_MS, envelope_ms, from_ms

T0_MS = 1_716_883_200_000  # 2024-05-28T08:00:00Z


def test_milliseconds_are_taken_as_they_are() -> None:
    assert envelope_ms(T0_MS) == T0_MS
    assert envelope_ms(T0_MS + 123) == T0_MS + 123


def test_seconds_stand_for_the_end_of_that_second() -> None:
    assert envelope_ms(T0_MS // 1000) == T0_MS + 999
    assert envelope_ms(1) == 1999


def test_the_seconds_cutoff() -> None:
    assert envelope_ms(99_999_999_999) == 99_999_999_999_999  # still seconds
    assert envelope_ms(100_000_000_000) == 100_000_000_000  # ms from here


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, -1, -T0_MS, 1.5e12, "1716883200000", MAX_MS + 1, 10**30],
)
def test_what_is_not_a_usable_time_is_none(value: object) -> None:
    assert envelope_ms(value) is None


def test_the_largest_storable_value_is_kept() -> None:
    assert envelope_ms(MAX_MS) == MAX_MS


def test_from_ms_is_exact_to_the_millisecond_up_to_the_largest_value() -> None:
    assert from_ms(MAX_MS) == datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    # Either side of where the exact path takes over, and well past where floats drift.
    for ms in (4_102_444_799_999, 4_102_444_800_000, 8_000_000_000_123):
        assert from_ms(ms) == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def test_from_ms_is_aware_utc() -> None:
    assert from_ms(T0_MS) == datetime(2024, 5, 28, 8, 0, tzinfo=UTC)
    assert from_ms(T0_MS + 1) == datetime(2024, 5, 28, 8, 0, 0, 1000, tzinfo=UTC)
    assert from_ms(None) is None
