"""How the console writes durations, times and counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.web.console.formatting import count, duration, since, stamp


def test_duration() -> None:
    cases = {None: "-", -3: "0.00 s", 0.123: "0.12 s", 42: "42 s", 600: "10 min"}
    cases |= {3 * 3600: "3.0 h", 5 * 86400: "5.0 d"}
    for seconds, text in cases.items():
        assert duration(seconds) == text


def test_since_stamp_and_count() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert since(now - timedelta(minutes=2), now) == 120 and since(None, now) is None
    assert stamp(now) == "2026-12-01 12:00:00 UTC" and stamp(None) == "-"
    assert count(1234567) == "1,234,567" and count(2.6) == "3"
    assert count(None) == "-" and count("12") == "-" and count(True) == "-"
