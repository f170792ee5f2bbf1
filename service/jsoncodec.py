"""Fast JSON for the hot paths (stored bodies, API pages, jsonb columns), stdlib as fallback.

orjson parses and writes JSON several times faster than the stdlib, which matters when every
replicated object is parsed once and written back as jsonb. It differs in corners Clerk's
free-form metadata can reach: it reads integers beyond 64 bits as floats (losing digits)
and refuses to write them, and refuses NaN/Infinity. Those go through the stdlib instead.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# 19 digits in a row may be beyond 64 bits; a false alarm only costs the slower parser.
_LONG_NUMBER = re.compile(rb"\d{19}")


def loads(data: bytes | str) -> Any:
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_NUMBER.search(raw):
        return json.loads(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)
