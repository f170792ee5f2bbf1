"""Clerk's time units: resource times are epoch ms; the envelope time may be ms or seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# 1e11 read as seconds is the year 5138; read as ms it is 1973. Clerk's docs say the envelope
# `timestamp` is ms, its published examples use seconds: anything below this is seconds.
_SECONDS_CUTOFF = 100_000_000_000
# The year 9999 in ms: past it no database timestamp (nor Python datetime) can hold the value.
MAX_MS = 253_402_300_799_999
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FLOAT_EXACT_MS = 4_102_444_800_000  # 2100-01-01


def envelope_ms(value: object) -> int | None:
    """The envelope `timestamp` as epoch ms, or None when absent or not an integer.

    A seconds value stands for the end of that second: a deletion stamped in seconds must not
    sort before an update Clerk made earlier in the same second.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    ms = value * 1000 + 999 if value < _SECONDS_CUTOFF else value
    return ms if ms <= MAX_MS else None


def from_ms(value: int | None) -> datetime | None:
    """Epoch ms as an aware UTC datetime, exact to the millisecond.

    The float division is exact to the microsecond until about the year 2250, and cheaper than
    timedelta arithmetic: beyond the year 2100 the exact path is taken.
    """
    if value is None:
        return None
    if value < _FLOAT_EXACT_MS:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return _EPOCH + timedelta(milliseconds=value)
