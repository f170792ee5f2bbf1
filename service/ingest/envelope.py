"""The Clerk envelope, parsed only after the signature is verified."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from service import jsoncodec
from service.clerk import bounds
from service.clerk.timestamps import envelope_ms
from service.ingest.refusals import Refusal


@dataclass(frozen=True)
class Envelope:
    type: str
    data: dict[str, Any]
    timestamp_ms: int | None
    object_id: str | None


def parse_envelope(body: bytes) -> Envelope:
    """JSON object with a string `type` and an object `data`, or a Refusal."""
    try:
        # The inbox keeps the body's text, and the envelope is read only for `type`,
        # `data.id` and `timestamp` (a float there is no timestamp, as a huge int is none).
        value = jsoncodec.loads(body, exact_integers=False)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Refusal(400, "malformed_json", "body is not UTF-8 JSON") from None
    except RecursionError:
        raise Refusal(400, "malformed_json", "body is nested too deeply") from None
    if bounds.may_be_too_deep(body) and bounds.depth(value) > bounds.MAX_DEPTH:
        # What the replica keeps is walked later (redaction, apply): bounded here, once.
        raise Refusal(400, "malformed_json", f"body nests more than {bounds.MAX_DEPTH} levels deep")
    if not isinstance(value, dict):
        raise Refusal(422, "bad_envelope", "body is not a JSON object")
    event_type, data = value.get("type"), value.get("data")
    # Printable only: a NUL is valid JSON but PostgreSQL cannot store it in a text column, and a
    # delivery we can never store must be refused (4xx), not failed (5xx) and retried forever.
    if (
        not isinstance(event_type, str)
        or not event_type
        or len(event_type) > 128
        or not event_type.isprintable()
    ):
        raise Refusal(422, "bad_envelope", "`type` must be a short printable string")
    if not isinstance(data, dict):
        raise Refusal(422, "bad_envelope", "`data` must be an object")
    object_id = data.get("id")
    return Envelope(
        type=event_type,
        data=data,
        timestamp_ms=envelope_ms(value.get("timestamp")),
        object_id=object_id if _usable_id(object_id) else None,
    )


def _usable_id(value: object) -> bool:
    """Worth keeping as the inbox's object_id (an index hint; the body keeps the truth)."""
    return isinstance(value, str) and 0 < len(value) <= 255 and value.isprintable()
