"""How the console's templates write times, durations and counts (Jinja filters)."""

from __future__ import annotations

from datetime import datetime

import jinja2


def duration(seconds: float | None) -> str:
    """A short human duration in seconds, minutes, hours or days ("-" for none)."""
    if seconds is None:
        return "-"
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def since(moment: datetime | None, now: datetime) -> float | None:
    """Seconds from `moment` to `now` (None for never)."""
    return None if moment is None else (now - moment).total_seconds()


def stamp(moment: datetime | None) -> str:
    """A UTC time to the second, as ISO 8601 without the offset noise."""
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def count(value: object) -> str:
    """A count with thousands separators ("-" for anything not a number, missing ones too)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{round(value):,}"


def install(env: jinja2.Environment) -> None:
    env.filters.update(duration=duration, stamp=stamp, count=count)
    env.globals.update(since=since)
