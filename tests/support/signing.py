"""Genuine Svix signatures made with the svix library, for deliveries the tests send."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from svix.webhooks import Webhook

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PREVIOUS_SECRET = "whsec_plJ3nmyCDGBKInavdOK15jslYfdGhouM"
OTHER_SECRET = "whsec_dGhpcyBpcyBub3QgdGhlIHNlY3JldCB5b3Ugd2FudA"


def new_svix_id() -> str:
    return f"msg_{uuid4().hex}"


def signed_headers(
    body: bytes | str,
    *,
    secret: str = SECRET,
    svix_id: str | None = None,
    at: datetime | None = None,
) -> dict[str, str]:
    text = body.decode() if isinstance(body, bytes) else body
    at = at or datetime.now(UTC)
    svix_id = svix_id or new_svix_id()
    return {
        "svix-id": svix_id,
        "svix-timestamp": str(int(at.timestamp())),
        "svix-signature": Webhook(secret).sign(svix_id, at, text),
        "content-type": "application/json",
    }


def signed(envelope: dict[str, Any], **kwargs: Any) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(envelope).encode()
    return body, signed_headers(body, **kwargs)


def minutes_ago(n: int) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=n)
