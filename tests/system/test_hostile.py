"""Hostile input: no input gets a 5xx, crashes the service or leaks memory, and other
requests keep being served. Signatures made with the svix library where they must verify."""

from __future__ import annotations

import asyncio
import gc
import json
import select
import socket
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.apply.batch import apply_one
from service.clerk.rows import RowOptions
from service.config import Settings
from service.db.engine import create_engine
from service.dev.ports import free_port, wait_for_port
from service.inbox.store import Status
from service.web.app import create_app
from tests.support import clerk_payloads as cp
from tests.support.commands import CLI, env
from tests.support.replica_helpers import store_event
from tests.support.settings import make_settings
from tests.support.signing import SECRET, new_svix_id, signed_headers

REFUSALS = {200, 400, 401, 408, 413, 422}
latin1 = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=300)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


class App:
    """One app (lifespan running) on one event loop, reused across Hypothesis examples.

    Requests reach the app as ASGI messages the way httpx's ASGITransport delivers them, without
    the client around it: the memory test traces every allocation, and the client's own were
    most of them (the service sees the same scope, headers and body messages either way)."""

    def __init__(self, settings_: Settings) -> None:
        self.runner = asyncio.Runner()
        self.app = create_app(settings_)
        self.lifespan = self.app.router.lifespan_context(self.app)
        self.runner.run(self.lifespan.__aenter__())

    def post(self, body: bytes, headers: dict[str, str]) -> int:
        """POST `body` to the webhook with `headers` (any byte a client sends); the status."""
        return self.runner.run(self._post(body, headers))

    async def _post(self, body: bytes, headers: dict[str, str]) -> int:
        raw = [
            (b"host", b"t"),
            (b"content-length", str(len(body)).encode()),
            (b"accept", b"*/*"),
            (b"accept-encoding", b"gzip, deflate"),
            (b"connection", b"keep-alive"),
            (b"user-agent", b"python-httpx"),
            *((k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()),
        ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "headers": raw,
            "scheme": "http",
            "path": "/webhooks/clerk",
            "raw_path": b"/webhooks/clerk",
            "query_string": b"",
            "server": ("t", None),
            "client": ("127.0.0.1", 123),
            "root_path": "",
        }
        chunks = iter([body])
        done = asyncio.Event()
        statuses: list[int] = []

        async def receive() -> dict[str, Any]:
            chunk = next(chunks, None)
            if chunk is None:
                await done.wait()
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": chunk, "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        await self.app(scope, receive, send)
        assert done.is_set() and len(statuses) == 1, statuses
        return statuses[0]

    def close(self) -> None:
        self.runner.run(self.lifespan.__aexit__(None, None, None))
        self.runner.close()


@pytest.fixture(scope="module")
def app(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Any, redis_url: str
) -> Iterator[App]:
    import shutil

    path = tmp_path_factory.mktemp("hostile") / "replica.db"
    shutil.copy(sqlite_template, path)
    served = App(make_settings(f"sqlite:///{path}", redis_url, webhook_max_body_bytes=65_536))
    yield served
    served.close()


def assert_still_serving(app: App) -> None:
    body = json.dumps(cp.envelope("user.created", cp.user(new_svix_id())))
    assert app.post(body.encode(), signed_headers(body)) == 200


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    svix_id=st.none() | latin1,
    timestamp=st.none() | latin1 | st.integers(-(10**12), 10**12).map(str),
    signatures=st.none()
    | latin1
    | st.lists(st.binary(max_size=40), max_size=60).map(
        lambda sigs: " ".join("v1," + __import__("base64").b64encode(s).decode() for s in sigs)
    ),
    body=st.binary(max_size=2048),
)
def test_fuzzed_headers_and_bodies_never_get_a_5xx(
    app: App, svix_id: str | None, timestamp: str | None, signatures: str | None, body: bytes
) -> None:
    headers = {
        k: v
        for k, v in {
            "svix-id": svix_id,
            "svix-timestamp": timestamp,
            "svix-signature": signatures,
        }.items()
        if v is not None
    }
    assert app.post(body, headers) in REFUSALS


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    envelope=st.dictionaries(
        st.sampled_from(["type", "data", "timestamp", "object", "x"]), json_values
    )
    | json_values,
    skew=st.integers(-400, 400),
)
def test_validly_signed_junk_never_gets_a_5xx(app: App, envelope: Any, skew: int) -> None:
    body = json.dumps(envelope)
    at = datetime.now(UTC) + timedelta(seconds=skew)  # inside and outside the 5 minute window
    status = app.post(body.encode(), signed_headers(body, at=at))
    assert status in REFUSALS
    if abs(skew) > 310:
        assert status == 401


def test_the_service_keeps_serving_after_the_fuzz(app: App) -> None:
    assert_still_serving(app)


def test_no_memory_growth_across_thousands_of_hostile_requests(app: App) -> None:
    def hostile(i: int) -> None:
        junk = (b"\xff" * (i % 50)) + json.dumps({"type": i, "data": [i] * (i % 30)}).encode()
        app.post(
            junk,
            {"svix-id": f"msg_{i}", "svix-timestamp": "1", "svix-signature": "v1,AAAA " * (i % 20)},
        )
        body = json.dumps(cp.envelope("email.created", {"id": f"ema_{i}"}))
        app.post(body.encode(), signed_headers(body))  # accepted and recorded as ignored

    for i in range(500):  # warm up: caches, pools, first-use allocations
        hostile(i)
    # What is retained, not garbage a collection has yet to take (earlier tests' included).
    gc.collect()
    tracemalloc.start(12)
    before = tracemalloc.take_snapshot()
    for i in range(500, 2500):
        hostile(i)
    gc.collect()
    grown = tracemalloc.take_snapshot().compare_to(before, "traceback")
    tracemalloc.stop()
    # Memory kept per request is many blocks from one place. A single block that grew is a
    # process-wide table resized once (sys.intern's, seen here: 3.7 MiB when a full run's
    # interned strings crossed a threshold during these requests), not something kept per
    # request, so it does not count; everything else does.
    kept = [stat for stat in grown if stat.count_diff > 1 and stat.size_diff > 0]
    growth_kib = sum(stat.size_diff for stat in kept) / 1024
    resized_kib = sum(stat.size_diff for stat in grown if stat.count_diff <= 1) / 1024
    from tests.support.measured import REPORT

    REPORT.append(
        f"hostile requests: 4000 after warm-up, traced memory kept {growth_kib:.0f} KiB"
        f" (and {resized_kib:.0f} KiB in single resized blocks)"
    )
    # well under 1 KiB per request: nothing is kept per request (else: where it was allocated)
    assert growth_kib < 1024, "\n".join(
        f"{stat.size_diff / 1024:.0f} KiB in {stat.count_diff} blocks:\n"
        + "\n".join(stat.traceback.format())
        for stat in sorted(kept, key=lambda stat: -stat.size_diff)[:3]
    )
    assert_still_serving(app)


FIELDS = {
    "user.updated": cp.user(),
    "organization.updated": cp.organization(),
    "organizationMembership.updated": cp.membership(),
    "organizationInvitation.created": cp.invitation(),
    "organizationDomain.updated": cp.domain(),
}
weird = json_values | st.sampled_from(
    [10**30, -1, "\u0000", "\ud800", "x" * 5000, {"id": None}, [], "", 1.5, 2**63]
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(event_type=st.sampled_from(sorted(FIELDS)), data=st.data(), value=weird)
def test_wrong_types_in_any_field_fail_the_event_not_the_worker(
    pg_url: str, redis_url: str, event_type: str, data: st.DataObject, value: Any
) -> None:
    payload = json.loads(json.dumps(FIELDS[event_type]))
    field = data.draw(st.sampled_from(sorted(payload)), label="field")
    payload[field] = value
    payload.setdefault("id", "x_1")

    async def run() -> Status | None:
        engine = create_engine(make_settings(pg_url, redis_url))
        try:
            return await apply_one(
                engine, await store_event(engine, cp.envelope(event_type, payload)), RowOptions()
            )
        finally:
            await engine.dispose()

    assert asyncio.run(run()) in (Status.APPLIED, Status.FAILED)


@pytest.fixture
def server(sqlite_db_url: str, redis_url: str) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=env(
            database_url=sqlite_db_url,
            redis_url=redis_url,
            clerk_webhook_signing_secret=SECRET,
            webhook_read_timeout_seconds="2",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(20)


def trickle(port: int, body: bytes, headers: dict[str, str], per_byte: float) -> bytes:
    """Send `body` a byte every `per_byte` seconds until it is all sent or the server has
    answered (a stalled client that keeps trickling after its 408 only keeps the test waiting);
    returns the answer."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        start = f"POST /webhooks/clerk HTTP/1.1\r\nHost: x\r\n{head}"
        sock.sendall(f"{start}Content-Length: {len(body)}\r\n\r\n".encode())
        for i in range(len(body)):
            if select.select([sock], [], [], 0)[0]:
                break  # answered (or closed) before the body was done
            try:
                sock.sendall(body[i : i + 1])
            except OSError:
                break
            time.sleep(per_byte)
        return sock.recv(4096)


def test_slow_clients_do_not_stop_others_and_stalled_ones_get_408(server: int) -> None:
    body = json.dumps(cp.envelope("user.created", cp.user("user_slow"))).encode()
    slow: dict[str, bytes] = {}
    threads = [
        threading.Thread(
            target=lambda: slow.__setitem__(
                "stalled", trickle(server, body, signed_headers(body), 0.02)
            )
        ),
    ]
    fast_body = json.dumps(cp.envelope("user.created", cp.user("user_fast"))).encode()
    for thread in threads:
        thread.start()
    timings = []
    for _ in range(30):  # meanwhile, everyone else is served promptly
        started = time.monotonic()
        assert (
            httpx.post(
                f"http://127.0.0.1:{server}/webhooks/clerk",
                content=fast_body,
                headers=signed_headers(fast_body),
                timeout=10,
            ).status_code
            == 200
        )
        timings.append(time.monotonic() - started)
    for thread in threads:
        thread.join()
    assert slow["stalled"].startswith(b"HTTP/1.1 408"), slow["stalled"][:100]
    assert max(timings) < 2.0  # a slow client must not delay anyone
    quick_enough = trickle(server, body[:0] + body, signed_headers(body), 1.0 / len(body))  # ~1 s
    assert quick_enough.startswith(b"HTTP/1.1 200"), quick_enough[:100]
