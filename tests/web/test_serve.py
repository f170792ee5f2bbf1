"""`clerk-replica serve` run as a user runs it: with METRICS_PORT, /metrics moves to a port of
its own (the main port answers it 404) behind the same token, both ports stop together, and a
metrics port that cannot be bound stops serve at start; without it, /metrics stays where it was."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest

from service.dev.ports import free_port, wait_for_port
from tests.support import clerk_payloads as cp
from tests.support.commands import CLI, env, run
from tests.support.signing import SECRET, signed

TOKEN = "scrape-me"


@dataclass
class Serving:
    """A running `clerk-replica serve`: its process, and the URL of each port."""

    proc: subprocess.Popen[str]
    web: str
    metrics: str


@contextmanager
def serving(database_url: str, redis_url: str, **values: str) -> Iterator[Serving]:
    """`clerk-replica serve` on a free port with `values` as settings, stopped (SIGTERM) after,
    unless the test stopped it itself."""
    port = free_port()
    metrics_url = f"http://{values.get('metrics_host', '127.0.0.1')}:{values.get('metrics_port')}"
    proc = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=env(
            database_url=database_url,
            redis_url=redis_url,
            clerk_webhook_signing_secret=SECRET,
            queue_prefix=f"serve-{port}",
            **values,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port, timeout=30)
        yield Serving(proc, f"http://127.0.0.1:{port}", metrics_url)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def stop(running: Serving, sig: int) -> str:
    """Send `sig`, wait for serve to exit, and return what it printed."""
    running.proc.send_signal(sig)
    out, _ = running.proc.communicate(timeout=30)
    return out


def listening(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def test_metrics_port_takes_metrics_off_the_main_port(sqlite_db_url: str, redis_url: str) -> None:
    metrics_port = free_port()
    with serving(
        sqlite_db_url, redis_url, metrics_port=str(metrics_port), metrics_token=TOKEN
    ) as running:
        wait_for_port(metrics_port)
        assert httpx.get(f"{running.web}/metrics").status_code == 404
        assert httpx.get(f"{running.web}/healthz").status_code == 200
        body, headers = signed(cp.envelope("user.created", cp.user()))
        headers["svix-signature"] = "v1,AAAA"
        refused = httpx.post(f"{running.web}/webhooks/clerk", content=body, headers=headers)
        assert refused.status_code == 401

        assert httpx.get(f"{running.metrics}/metrics").status_code == 401
        wrong = httpx.get(f"{running.metrics}/metrics", headers={"authorization": "Bearer no"})
        assert wrong.status_code == 401
        scrape = httpx.get(
            f"{running.metrics}/metrics", headers={"authorization": f"Bearer {TOKEN}"}
        )
        assert scrape.status_code == 200
        assert scrape.headers["content-type"].startswith("text/plain")
        # The web app's own counters and its gauges from the database: one process, one state.
        assert (
            'clerk_replica_deliveries_total{instance="default",outcome="refused",reason="bad_signature"}'
            in (scrape.text)
        )
        assert 'clerk_replica_inbox_events{status="pending"} 0.0' in scrape.text
        assert httpx.get(f"{running.metrics}/healthz").status_code == 404  # /metrics only

        out = stop(running, signal.SIGTERM)
        # uvicorn's way: SIGTERM is raised again once both have shut down cleanly.
        assert running.proc.returncode in (0, -signal.SIGTERM), out
        assert "Application shutdown complete" in out and "Traceback" not in out
        assert not listening(running.web) and not listening(running.metrics)


def test_without_metrics_port_metrics_stay_on_the_main_port(
    sqlite_db_url: str, redis_url: str
) -> None:
    with serving(sqlite_db_url, redis_url) as running:
        scrape = httpx.get(f"{running.web}/metrics")
        assert scrape.status_code == 200 and "clerk_replica_inbox_events" in scrape.text


def test_ctrl_c_stops_both_ports_quietly(sqlite_db_url: str, redis_url: str) -> None:
    """SIGINT is Ctrl-C, and what Fly sends a machine by default."""
    metrics_port = free_port()
    with serving(sqlite_db_url, redis_url, metrics_port=str(metrics_port)) as running:
        wait_for_port(metrics_port)
        assert httpx.get(f"{running.metrics}/metrics").status_code == 200
        out = stop(running, signal.SIGINT)
        assert running.proc.returncode == 0, out
        assert "Application shutdown complete" in out and "Traceback" not in out
        assert not listening(running.web) and not listening(running.metrics)


def test_metrics_listen_only_on_metrics_host(sqlite_db_url: str, redis_url: str) -> None:
    metrics_port = free_port()
    with serving(
        sqlite_db_url, redis_url, metrics_port=str(metrics_port), metrics_host="127.0.0.2"
    ) as running:
        deadline = time.monotonic() + 30
        while not listening(running.metrics):
            assert time.monotonic() < deadline, "the metrics port never listened"
            time.sleep(0.1)
        assert running.metrics.startswith("http://127.0.0.2:")
        assert httpx.get(f"{running.metrics}/metrics").status_code == 200
        assert not listening(f"http://127.0.0.1:{metrics_port}")  # not on the default address


def test_a_metrics_port_in_use_stops_serve_at_start(sqlite_db_url: str, redis_url: str) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        metrics_port = taken.getsockname()[1]
        result = run(
            "serve",
            "--port",
            str(port),
            timeout=60,
            database_url=sqlite_db_url,
            redis_url=redis_url,
            clerk_webhook_signing_secret=SECRET,
            metrics_port=str(metrics_port),
        )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().startswith(f"error: METRICS_PORT {metrics_port} cannot be bound")
    assert "Traceback" not in result.stderr
    assert "Uvicorn running" not in result.stderr  # the web port never listened


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"metrics_port": "same"}, "error: METRICS_PORT must differ from the port serve listens"),
        ({"metrics_port": "0"}, "error: invalid configuration: METRICS_PORT"),
        (
            {"metrics_port": "free", "metrics_host": "no-such-host.invalid"},
            "error: METRICS_HOST 'no-such-host.invalid' is not an address to listen on",
        ),
    ],
)
def test_unusable_metrics_settings_are_one_clear_line(
    sqlite_db_url: str, redis_url: str, values: dict[str, str], message: str
) -> None:
    port = free_port()
    given = {"same": str(port), "free": str(free_port())}
    settings = {k: given.get(v, v) for k, v in values.items()}
    result = run(
        "serve",
        "--port",
        str(port),
        timeout=60,
        database_url=sqlite_db_url,
        redis_url=redis_url,
        clerk_webhook_signing_secret=SECRET,
        **settings,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().startswith(message), result.stderr
    assert "Traceback" not in result.stderr
