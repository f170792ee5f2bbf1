"""How arq jobs are written to and read from Redis: JSON, never pickle.

arq's default format is pickle, and unpickling runs code: anyone able to write to Redis would
run code in the worker. Jobs and results here hold only names, numbers and strings, so JSON
carries them. Both sides use it; a job that does not decode as a JSON object is refused (arq
logs its id and drops it) and nothing in it is run.
"""

from __future__ import annotations

from typing import Any

import orjson


def encode(value: dict[str, Any]) -> bytes:
    """A job or a job result as JSON; whatever JSON cannot carry (an exception arq records as
    a failed job's result) is written as its text."""
    return orjson.dumps(value, default=str)


def decode(data: bytes) -> dict[str, Any]:
    """A job or a job result back from JSON; anything else (a pickle) raises ValueError.
    Positional arguments come back as the tuple arq wrote."""
    value = orjson.loads(data)
    if not isinstance(value, dict):
        raise ValueError("a job must be a JSON object")
    if isinstance(value.get("a"), list):
        value["a"] = tuple(value["a"])
    return value
