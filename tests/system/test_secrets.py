"""Secrets and personal data never leave the service's outputs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.dev.ports import free_port, wait_for_port
from tests.support import clerk_payloads as cp
from tests.support.clerk_instances import populate
from tests.support.commands import CLI, env
from tests.support.fake_clerk import FakeClerk, serve
from tests.support.signing import SECRET, signed

API_KEY = "sk_live_thisIsTheInstanceSecretKey0123"
EMAIL, FIRST, LAST = "zelda.quux@private.example", "Zelda", "Quuxington"


def forbidden() -> list[str]:
    return [SECRET, SECRET.removeprefix("whsec_"), API_KEY, EMAIL, FIRST, LAST]


@pytest.fixture
def fake() -> Iterator[tuple[FakeClerk, str]]:
    clerk = FakeClerk(key=API_KEY)
    populate(clerk, users=5, orgs=1, members_per_org=1)
    clerk.users[0] = cp.user(
        "user_00000", emails=[cp.email("idn_z", EMAIL)], first_name=FIRST, last_name=LAST
    )
    with serve(clerk) as url:
        yield clerk, url


def test_no_secret_or_personal_data_in_any_output(
    sqlite_db_url: str, redis_url: str, fake: tuple[FakeClerk, str], tmp_path: Path
) -> None:
    _clerk, url = fake
    values = {
        "database_url": sqlite_db_url,
        "redis_url": redis_url,
        "clerk_webhook_signing_secret": SECRET,
        "clerk_secret_key": API_KEY,
        "clerk_api_url": url,
        "log_level": "debug",
        "log_format": "json",
        "queue_prefix": "secrets",
        "metrics_token": "metrics-token-value",
        "reconcile_max_requests_per_10s": "10000",
    }
    outputs: list[str] = []
    port = free_port()
    web = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=env(**values),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port)
        person = cp.user(
            "user_z", emails=[cp.email("idn_z", EMAIL)], first_name=FIRST, last_name=LAST
        )
        for envelope in (
            cp.envelope("user.created", person),
            cp.envelope(
                "user.updated", {**person, "updated_at": "not a time"}
            ),  # fails in the worker
            cp.envelope("email.created", {"id": "ema_1", "to_email_address": EMAIL, "body": FIRST}),
        ):
            body, headers = signed(envelope)
            assert (
                httpx.post(
                    f"http://127.0.0.1:{port}/webhooks/clerk", content=body, headers=headers
                ).status_code
                == 200
            )
        body, headers = signed(cp.envelope("user.created", person))
        headers["svix-signature"] = "v1,AAAA"
        assert (
            httpx.post(
                f"http://127.0.0.1:{port}/webhooks/clerk", content=body, headers=headers
            ).status_code
            == 401
        )
        for path in ("/readyz", "/healthz"):
            outputs.append(httpx.get(f"http://127.0.0.1:{port}{path}").text)
        outputs.append(
            httpx.get(
                f"http://127.0.0.1:{port}/metrics",
                headers={"authorization": "Bearer metrics-token-value"},
            ).text
        )
        outputs.append(httpx.get(f"http://127.0.0.1:{port}/metrics").text)  # the 401's body
    finally:
        web.terminate()
        outputs.append(web.communicate(timeout=20)[0])

    for args in (
        ["worker", "--burst"],
        ["replay"],  # re-queues the failed event...
        ["worker", "--burst"],  # ...which fails again, with its error recorded once more
        ["reconcile"],
        ["reconcile", "--dry-run"],
        ["status"],
        ["status", "--json"],
        ["send-test-event", "user.created", "--url", f"http://127.0.0.1:{free_port()}/x"],
    ):
        result = subprocess.run(
            [CLI, *args], env=env(**values), capture_output=True, text=True, timeout=120
        )
        outputs += [result.stdout, result.stderr]
    wrong_key = subprocess.run(
        [CLI, "reconcile"],
        env=env(**{**values, "clerk_secret_key": "sk_live_wrongButSecret99"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong_key.returncode == 1
    outputs += [wrong_key.stdout, wrong_key.stderr]

    status = json.loads(
        subprocess.run(
            [CLI, "status", "--json"], env=env(**values), capture_output=True, text=True
        ).stdout
    )
    assert status["inbox"]["failed"], "the failing event must be visible"
    everything = "\n".join(outputs) + json.dumps(status)
    assert "user_z" in everything  # ids are there...
    for value in [*forbidden(), "sk_live_wrongButSecret99", "metrics-token-value"]:
        assert value not in everything, value  # ...secrets, emails and names are not
