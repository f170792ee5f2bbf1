"""Sign and POST example events to a running instance, like `stripe trigger`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
from svix.webhooks import Webhook

from service.config import DEFAULT_INSTANCE, Settings, webhook_path
from service.dev import runtime
from service.dev import secret as dev_secret
from service.dev.demo import demo_events
from service.dev.examples import example_event


@dataclass(frozen=True)
class Target:
    """Where deliveries go and the secret they are signed with."""

    url: str
    secret: str


def post_signed(
    target: Target, event: dict[str, Any], svix_id: str, client: httpx.Client | None = None
) -> httpx.Response:
    """POST `event` as Svix delivers it: signed now, under `svix_id`."""
    body = json.dumps(event)
    now = datetime.now(UTC)
    headers = {
        "svix-id": svix_id,
        "svix-timestamp": str(int(now.timestamp())),
        "svix-signature": Webhook(target.secret).sign(svix_id, now, body),
        "content-type": "application/json",
        "user-agent": "clerk-replica send-test-event",
    }
    if client is not None:
        return client.post(target.url, content=body.encode(), headers=headers)
    return httpx.post(target.url, content=body.encode(), headers=headers, timeout=15)


def send_test_event(event_type: str, url: str, secret: str) -> httpx.Response:
    return post_signed(Target(url, secret), example_event(event_type), f"msg_test_{uuid4().hex}")


def demo_svix_id(event: dict[str, Any]) -> str:
    """The same id for the same event: a second --demo is a duplicate delivery, not a new one."""
    digest = hashlib.sha256(json.dumps(event, sort_keys=True).encode()).hexdigest()
    return f"msg_demo_{digest[:24]}"


def send_demo(target: Target) -> list[tuple[dict[str, Any], httpx.Response]]:
    """Send the demo world in order; stops at the first delivery not accepted (2xx)."""
    sent: list[tuple[dict[str, Any], httpx.Response]] = []
    with httpx.Client(timeout=15) as client:
        for event in demo_events():
            response = post_signed(target, event, demo_svix_id(event), client)
            sent.append((event, response))
            if response.status_code >= 300:
                break
    return sent


def target_of(settings: Settings, url: str | None) -> Target:
    """`url`, else the running `dev`, else this machine's PORT (a named instance: its endpoint
    there); signed with the instance's signing secret, else with the secret `dev` generated."""
    state_dir = Path(settings.dev.state_dir)
    secret = (
        settings.signing_secrets()[0]
        if settings.clerk.webhook_signing_secret is not None
        else dev_secret.load(state_dir)
    )
    if secret is None:
        settings.signing_secrets()  # raises, naming the variable
        raise AssertionError("unreachable")
    running = runtime.read(state_dir)
    path = webhook_path(settings.instance_name)
    if url is None and settings.instance_name != DEFAULT_INSTANCE:
        url = f"http://127.0.0.1:{settings.web.port}{path}"
    return Target(
        url or running.get("webhook_url") or f"http://127.0.0.1:{settings.web.port}{path}", secret
    )


def send_to_running(settings: Settings, event_type: str, url: str | None) -> httpx.Response:
    target = target_of(settings, url)
    return send_test_event(event_type, target.url, target.secret)


def _object_id(event: dict[str, Any]) -> str:
    data = event.get("data")
    return str(data.get("id", "")) if isinstance(data, dict) else ""


class NotListening(RuntimeError):
    """Nothing answered at the webhook URL."""


def run_demo(target: Target, echo: Callable[[str], None]) -> bool:
    """Send the demo world, one line per delivery; True when every one was accepted."""
    try:
        sent = send_demo(target)
    except httpx.TransportError as exc:
        raise NotListening(
            f"nothing answered at {target.url} ({type(exc).__name__}): start "
            "`clerk-replica dev` (or serve), or pass --url"
        ) from None
    for event, response in sent:
        answer = response.text.strip()
        echo(f"{response.status_code} {event['type']} {_object_id(event)} {answer}")
    ok = len(sent) == len(demo_events()) and all(r.status_code < 300 for _, r in sent)
    if ok:
        echo(f"sent the demo world ({len(sent)} events) to {target.url}")
        echo("queries to try on it: docs/getting-started.md")
    else:
        echo(f"stopped: the delivery above was not accepted by {target.url}")
    return ok
