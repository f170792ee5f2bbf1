"""Sign and POST an example event to a running instance, like `stripe trigger`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import uuid4

import httpx
from svix.webhooks import Webhook

from service.dev.examples import example_event


def send_test_event(event_type: str, url: str, secret: str) -> httpx.Response:
    body = json.dumps(example_event(event_type))
    svix_id = f"msg_test_{uuid4().hex}"
    now = datetime.now(UTC)
    headers = {
        "svix-id": svix_id,
        "svix-timestamp": str(int(now.timestamp())),
        "svix-signature": Webhook(secret).sign(svix_id, now, body),
        "content-type": "application/json",
        "user-agent": "clerk-replica send-test-event",
    }
    return httpx.post(url, content=body.encode(), headers=headers, timeout=15)
