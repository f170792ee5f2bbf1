"""POST /webhooks/clerk over HTTP: every refusal stores nothing; acceptance is durable first."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import ConfigError, Settings
from service.dev.ports import free_port
from service.inbox.store import Status
from service.queue.client import connect, queue_name
from service.web.app import create_app
from tests.support import clerk_payloads as cp
from tests.support.replica_helpers import inbox_count, inbox_row
from tests.support.settings import make_settings
from tests.support.signing import (
    OTHER_SECRET,
    PREVIOUS_SECRET,
    SECRET,
    minutes_ago,
    signed,
    signed_headers,
)

URL = "/webhooks/clerk"
Client = Callable[[Settings], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def client(client_for: Any, settings: Settings) -> httpx.AsyncClient:
    return await client_for(settings)  # type: ignore[no-any-return]


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[ArqRedis]:
    redis = connect(settings)
    yield redis
    await redis.aclose()
    await redis.connection_pool.disconnect()


async def queued(redis: ArqRedis, settings: Settings) -> list[Any]:
    return [j.args for j in await redis.queued_jobs(queue_name=queue_name(settings))]


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_valid_delivery_is_stored_then_queued(
    client: httpx.AsyncClient, engine: AsyncEngine, redis: ArqRedis, settings: Settings
) -> None:
    body, headers = signed(cp.envelope("user.created", cp.user()))
    posted = time.time()
    response = await client.post(URL, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "accepted"}
    row = await inbox_row(engine, headers["svix-id"])
    assert row["status"] == Status.PENDING
    assert row["body"] == body.decode() and row["object_id"] == cp.user()["id"]
    assert row["event_timestamp_ms"] == cp.T0
    # One wake-up job, whose argument is the end of its window: jobs carry no event.
    [(until,)] = await queued(redis, settings)
    assert posted < until <= time.time() + settings.worker.wake_window_ms / 1000


async def test_redelivery_is_acknowledged_and_stored_once(
    client: httpx.AsyncClient, engine: AsyncEngine, redis: ArqRedis, settings: Settings
) -> None:
    body, headers = signed(cp.envelope("user.created", cp.user()))
    first = await client.post(URL, content=body, headers=headers)
    again = await client.post(
        URL, content=body, headers=signed_headers(body, svix_id=headers["svix-id"])
    )
    assert (first.json(), again.json()) == ({"status": "accepted"}, {"status": "duplicate"})
    assert await inbox_count(engine) == 1
    assert len(await queued(redis, settings)) == 1


async def test_unknown_type_is_acknowledged_and_recorded_as_ignored(
    client: httpx.AsyncClient, engine: AsyncEngine, redis: ArqRedis, settings: Settings
) -> None:
    for event_type in ("email.created", "sms.created", "something.new"):
        body, headers = signed(cp.envelope(event_type, {"id": "x_1", "email": "a@b.c"}))
        response = await client.post(URL, content=body, headers=headers)
        assert response.json() == {"status": "ignored"}
        row = await inbox_row(engine, headers["svix-id"])
        assert (row["status"], row["body"]) == (Status.IGNORED, None)
    assert await queued(redis, settings) == []


async def test_long_numbers_are_stored_verbatim_and_a_huge_timestamp_is_no_timestamp(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    # Ingest parses the envelope without the exact-integer check; the stored text is exact.
    big = 123456789012345678901234567890
    user = cp.user()
    user["public_metadata"] = {"account": big}
    body, headers = signed(cp.envelope("user.updated", user, timestamp=big))
    response = await client.post(URL, content=body, headers=headers)
    assert response.json() == {"status": "accepted"}
    row = await inbox_row(engine, headers["svix-id"])
    assert row["body"] == body.decode() and str(big) in row["body"]
    assert (row["event_timestamp_ms"], row["object_id"]) == (None, user["id"])


@pytest.mark.parametrize(
    ("mutate", "status", "code"),
    [
        (lambda h: h.pop("svix-id"), 400, "missing_headers"),
        (lambda h: h.pop("svix-timestamp"), 400, "missing_headers"),
        (lambda h: h.pop("svix-signature"), 400, "missing_headers"),
        (lambda h: h.update({"svix-id": "m" * 300}), 400, "bad_headers"),
        (lambda h: h.update({"svix-signature": "v1 no-comma"}), 400, "bad_headers"),
        (lambda h: h.update({"svix-signature": "v1,a,b"}), 400, "bad_headers"),
        (lambda h: h.update({"svix-signature": "v1," + "A" * 5000}), 400, "bad_headers"),
        (lambda h: h.update({"svix-timestamp": "soon"}), 400, "bad_headers"),
        (
            lambda h: h.update(
                {"svix-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}
            ),
            401,
            "bad_signature",
        ),
        (lambda h: h.update({"svix-id": "msg_other"}), 401, "bad_signature"),
        (
            lambda h: h.update({"svix-signature": h["svix-signature"].replace("v1,", "v2,")}),
            401,
            "bad_signature",
        ),
    ],
)
async def test_bad_headers_are_refused_and_store_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, mutate: Any, status: int, code: str
) -> None:
    body, headers = signed(cp.envelope("user.created", cp.user()))
    mutate(headers)
    response = await client.post(URL, content=body, headers=headers)
    assert (response.status_code, response.json()["error"]) == (status, code)
    assert await inbox_count(engine) == 0


async def test_tampered_body_is_refused(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    body, headers = signed(cp.envelope("user.created", cp.user()))
    tampered = body.replace(b"Example", b"Exampl3")
    response = await client.post(URL, content=tampered, headers=headers)
    assert response.status_code == 401
    assert await inbox_count(engine) == 0


@pytest.mark.parametrize("minutes", [6, -6, 60 * 24])
async def test_timestamp_outside_tolerance_is_refused(
    client: httpx.AsyncClient, engine: AsyncEngine, minutes: int
) -> None:
    # An old delivery captured and replayed later is refused even with a valid signature.
    body, headers = signed(cp.envelope("user.created", cp.user()), at=minutes_ago(minutes))
    response = await client.post(URL, content=body, headers=headers)
    assert (response.status_code, response.json()["error"]) == (401, "stale_timestamp")
    assert await inbox_count(engine) == 0


async def test_rotation_several_signatures_and_previous_secret(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body, current = signed(cp.envelope("user.created", cp.user()))
    svix_id = current["svix-id"]
    other = signed_headers(body, secret=OTHER_SECRET, svix_id=svix_id)
    both = dict(
        current, **{"svix-signature": f"{other['svix-signature']} {current['svix-signature']}"}
    )
    assert (await client.post(URL, content=body, headers=both)).status_code == 200

    body2, old = signed(cp.envelope("user.created", cp.user("user_2")), secret=PREVIOUS_SECRET)
    assert (await client.post(URL, content=body2, headers=old)).status_code == 200

    body3, wrong = signed(cp.envelope("user.created", cp.user("user_3")), secret=OTHER_SECRET)
    assert (await client.post(URL, content=body3, headers=wrong)).status_code == 401
    assert await inbox_count(engine) == 2


async def test_webhook_header_aliases_are_accepted(client: httpx.AsyncClient) -> None:
    body, headers = signed(cp.envelope("user.created", cp.user()))
    aliased = {k.replace("svix-", "webhook-"): v for k, v in headers.items()}
    assert (await client.post(URL, content=body, headers=aliased)).status_code == 200


async def test_oversized_body_is_refused_from_content_length(
    client_for: Any, db_url: str, redis_url: str, engine: AsyncEngine
) -> None:
    client = await client_for(make_settings(db_url, redis_url, webhook_max_body_bytes=4096))
    big = cp.user(public_metadata={"blob": "x" * 5000})
    body, headers = signed(cp.envelope("user.created", big))
    response = await client.post(URL, content=body, headers=headers)
    assert (response.status_code, response.json()["error"]) == (413, "body_too_large")
    assert await inbox_count(engine) == 0


async def test_oversized_streamed_body_is_refused_without_reading_it_all(
    client_for: Any, db_url: str, redis_url: str, engine: AsyncEngine
) -> None:
    client = await client_for(make_settings(db_url, redis_url, webhook_max_body_bytes=4096))

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(1000):  # 1 MB offered, no content-length
            yield b"x" * 1024

    _, headers = signed(cp.envelope("user.created", cp.user()))
    response = await client.post(URL, content=endless(), headers=headers)
    assert (response.status_code, response.json()["error"]) == (413, "body_too_large")
    assert await inbox_count(engine) == 0


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"not json", 400, "malformed_json"),
        (b"\xff\xfe{}", 400, "malformed_body"),
        ('{"type": "user.created", "data": {}}'.encode("utf-16-le"), 400, "malformed_json"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "malformed_json"),
        (b"[1, 2]", 422, "bad_envelope"),
        (b'{"data": {}}', 422, "bad_envelope"),
        (b'{"type": 7, "data": {}}', 422, "bad_envelope"),
        (b'{"type": "user.created", "data": "x"}', 422, "bad_envelope"),
        (b'{"type": "user.created"}', 422, "bad_envelope"),
        (b'{"type": "user.\\u0000created", "data": {}}', 422, "bad_envelope"),
    ],
)
async def test_verified_body_that_is_not_an_envelope_is_refused(
    client_for: Any,
    db_url: str,
    redis_url: str,
    engine: AsyncEngine,
    raw: bytes,
    status: int,
    code: str,
) -> None:
    client = await client_for(make_settings(db_url, redis_url, webhook_max_body_bytes=1_000_000))
    headers = signed_headers(raw.decode(errors="replace"))
    response = await client.post(URL, content=raw, headers=headers)
    assert (response.status_code, response.json()["error"]) == (status, code)
    assert await inbox_count(engine) == 0


async def test_database_down_answers_503_and_stores_nothing(
    client_for: Any, redis_url: str
) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    client = await client_for(make_settings(dead, redis_url, db_connect_timeout_seconds=1))
    body, headers = signed(cp.envelope("user.created", cp.user()))
    response = await client.post(URL, content=body, headers=headers)
    assert (response.status_code, response.json()["error"]) == (503, "unavailable")


async def test_unmigrated_database_answers_503(
    client_for: Any, redis_url: str, tmp_path: Any
) -> None:
    client = await client_for(make_settings(f"sqlite:///{tmp_path}/empty.db", redis_url))
    body, headers = signed(cp.envelope("user.created", cp.user()))
    assert (await client.post(URL, content=body, headers=headers)).status_code == 503


async def test_redis_down_still_acknowledges_durably(
    client_for: Any, db_url: str, engine: AsyncEngine
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    client = await client_for(make_settings(db_url, dead_redis, redis_timeout_seconds=0.5))
    body, headers = signed(cp.envelope("user.created", cp.user()))
    response = await client.post(URL, content=body, headers=headers)
    assert response.status_code == 200
    assert (await inbox_row(engine, headers["svix-id"]))["status"] == Status.PENDING


def test_missing_signing_secret_is_a_clear_startup_error(db_url: str, redis_url: str) -> None:
    with pytest.raises(ConfigError, match="CLERK_WEBHOOK_SIGNING_SECRET"):
        create_app(make_settings(db_url, redis_url, clerk_webhook_signing_secret=None))


async def test_a_stalled_database_answers_503_in_bounded_time(
    client_for: Any, pg_db_url: str, redis_url: str
) -> None:
    import asyncio

    from tests.support.databases import inbox_locked

    client = await client_for(make_settings(pg_db_url, redis_url, ingest_db_timeout_seconds=1))
    body, headers = signed(cp.envelope("user.created", cp.user()))
    async with inbox_locked(pg_db_url):
        started = time.monotonic()
        response = await asyncio.wait_for(
            client.post("/webhooks/clerk", content=body, headers=headers), timeout=10
        )
        waited = time.monotonic() - started
    assert response.status_code == 503 and response.json()["error"] == "unavailable"
    assert waited < 3  # well before Svix's own 15 s delivery timeout
    # Svix's retry of the same delivery is then stored, once.
    again = await client.post("/webhooks/clerk", content=body, headers=headers)
    assert again.status_code == 200


def two_instances(settings: Settings, **overrides: Any) -> Settings:
    """`settings` keeping two named instances, prod and staging, each with its own secret
    (the single-instance secrets left unset)."""
    values: dict[str, Any] = {
        "clerk_instances": "prod,staging",
        "clerk_webhook_signing_secret": None,
        "clerk_webhook_signing_secret_previous": None,
        "instance_environ": {
            "CLERK_PROD_WEBHOOK_SIGNING_SECRET": SecretStr(PREVIOUS_SECRET),
            "CLERK_STAGING_WEBHOOK_SIGNING_SECRET": SecretStr(OTHER_SECRET),
        },
    }
    return settings.updated(**{**values, **overrides})


async def test_each_named_instance_has_its_endpoint_and_only_its_secret(
    client_for: Client, settings: Settings, engine: AsyncEngine
) -> None:
    client = await client_for(two_instances(settings))
    body, headers = signed(
        cp.envelope("user.created", cp.user("user_prod")), secret=PREVIOUS_SECRET
    )
    answer = await client.post(f"{URL}/prod", content=body, headers=headers)
    assert answer.status_code == 200
    assert (await inbox_row(engine, headers["svix-id"]))["instance"] == "prod"

    # Staging's delivery at prod's endpoint: refused, nothing of it stored.
    body, headers = signed(cp.envelope("user.created", cp.user("user_stg")), secret=OTHER_SECRET)
    refused = await client.post(f"{URL}/prod", content=body, headers=headers)
    assert (refused.status_code, refused.json()["error"]) == (401, "bad_signature")
    assert await inbox_count(engine) == 1
    answer = await client.post(f"{URL}/staging", content=body, headers=headers)
    assert answer.status_code == 200
    assert (await inbox_row(engine, headers["svix-id"]))["instance"] == "staging"

    # No single-instance secret: the plain endpoint and unknown names are not served.
    for path in (URL, f"{URL}/qa"):
        assert (await client.post(path, content=body, headers=headers)).status_code == 404
    assert await inbox_count(engine) == 2


async def test_the_plain_endpoint_stays_beside_named_ones(
    client_for: Client, settings: Settings, engine: AsyncEngine
) -> None:
    kept = two_instances(settings, clerk_webhook_signing_secret=SecretStr(SECRET))
    client = await client_for(kept)
    body, headers = signed(cp.envelope("user.created", cp.user()))
    assert (await client.post(URL, content=body, headers=headers)).status_code == 200
    assert (await inbox_row(engine, headers["svix-id"]))["instance"] == "default"
    # The default instance's secret opens no named endpoint.
    body, headers = signed(cp.envelope("user.created", cp.user("user_2")))
    assert (await client.post(f"{URL}/prod", content=body, headers=headers)).status_code == 401


def test_a_named_instance_without_its_secret_stops_the_app(settings: Settings) -> None:
    missing = two_instances(settings, instance_environ={})
    with pytest.raises(ConfigError, match="CLERK_PROD_WEBHOOK_SIGNING_SECRET"):
        create_app(missing)
