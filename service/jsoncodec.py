"""Fast JSON for the hot paths (stored bodies, API pages, jsonb columns), stdlib as fallback.

orjson parses and writes JSON several times faster than the stdlib, which matters when every
replicated object is parsed once and written back as jsonb. It differs in corners Clerk's
free-form metadata can reach: it reads integers beyond 64 bits as floats (losing digits)
and refuses to write them, and refuses NaN/Infinity. Those go through the stdlib instead.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# 19 digits in a row may be beyond 64 bits; a false alarm only costs the slower parser. Found
# by mapping every digit to "0" and everything else to " ": far cheaper than re's \d{19},
# which tries a match at every byte of every body.
_DIGITS_ONLY = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_NUMBER = b"0" * 19


def loads(data: bytes | str, *, exact_integers: bool = True) -> Any:
    """Parse JSON text. Bytes must be UTF-8: the fallback decodes them as such, where
    json.loads(bytes) would guess UTF-16 or UTF-32 from NULs.

    exact_integers=False skips the long-number check (a noticeable share of a delivery's CPU
    at ingest) for callers that keep the text and read only strings and small numbers from the
    value: integers beyond 64 bits may then come back as floats.
    """
    raw = data.encode() if isinstance(data, str) else data
    try:
        if not exact_integers or _LONG_NUMBER not in raw.translate(_DIGITS_ONLY):
            return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    return json.loads(data if isinstance(data, str) else data.decode("utf-8"))


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)
