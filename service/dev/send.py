"""Sign and POST an example event to a running instance, like `stripe trigger`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import httpx
from svix.webhooks import Webhook

from service.config import DEFAULT_INSTANCE, Settings, webhook_path
from service.dev import runtime
from service.dev import secret as dev_secret
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


def send_to_running(settings: Settings, event_type: str, url: str | None) -> httpx.Response:
    """Send to `url`, else to the running `dev`, else to this machine's PORT (a named
    instance: its endpoint there); signed with the instance's signing secret, else with the
    secret `dev` generated."""
    state_dir = Path(settings.dev_state_dir)
    secret = (
        settings.signing_secrets()[0]
        if settings.clerk_webhook_signing_secret is not None
        else dev_secret.load(state_dir)
    )
    if secret is None:
        settings.signing_secrets()  # raises, naming the variable
        raise AssertionError("unreachable")
    running = runtime.read(state_dir)
    path = webhook_path(settings.instance_name)
    if url is None and settings.instance_name != DEFAULT_INSTANCE:
        url = f"http://127.0.0.1:{settings.port}{path}"
    target = url or running.get("webhook_url") or f"http://127.0.0.1:{settings.port}{path}"
    return send_test_event(event_type, target, secret)
