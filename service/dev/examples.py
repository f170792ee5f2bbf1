"""Clerk's published example events (webhooks OpenAPI spec 2025-04-15), made current to send."""

from __future__ import annotations

import json
import time
from functools import cache
from importlib.resources import files
from typing import Any


@cache
def _examples() -> dict[str, dict[str, Any]]:
    text = files("service.dev").joinpath("clerk_examples.json").read_text()
    loaded: dict[str, dict[str, Any]] = json.loads(text)
    return loaded


def published_example(event_type: str) -> dict[str, Any]:
    """Clerk's example event of `event_type` as published (shared: copy before changing it)."""
    return _examples()[event_type]


def event_types() -> list[str]:
    return sorted(_examples())


def example_event(event_type: str) -> dict[str, Any]:
    """The published example with the envelope time and `updated_at` set to now, so that
    sending `.updated` after `.created` moves the replica forward as it would in production."""
    if event_type not in _examples():
        raise KeyError(event_type)
    event: dict[str, Any] = json.loads(json.dumps(_examples()[event_type]))
    now_ms = int(time.time() * 1000)
    event["timestamp"] = now_ms
    if isinstance(event.get("data"), dict) and "updated_at" in event["data"]:
        event["data"]["updated_at"] = now_ms
    return event
