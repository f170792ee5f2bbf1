"""The console over HTTP: nothing about the replica without a session, actions only as a POST
from this site, replay and reconcile doing what they say, bodies only when asked for."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import structlog
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import ConfigError, Settings
from service.inbox.store import Status, inbox
from service.queue.client import connect, queue_name
from service.web.app import create_app, create_metrics_app
from tests.support.console import LEAKY_ERROR, TOKEN, console_settings, failed_event, sign_in
from tests.support.replica_helpers import inbox_row
from tests.support.settings import make_settings

ORIGIN = {"origin": "http://t"}
URLS = ["/console/", "/console/events/{id}"]
ACTIONS = [
    "/console/replay-failed",
    "/console/events/{id}/replay",
    "/console/events/{id}/body",
    "/console/reconcile",
    "/console/logout",
]


@pytest.fixture
def settings(db_url: str, redis_url: str) -> Settings:
    return console_settings(db_url, redis_url, clerk_secret_key="sk_test_console")


async def queued_jobs(settings: Settings) -> int:
    redis = connect(settings)
    try:
        return int(await redis.zcard(queue_name(settings)))
    finally:
        await redis.aclose()
        await redis.connection_pool.disconnect()


async def test_without_a_session_nothing_about_the_replica_is_answered(
    client_for: Any, settings: Settings, engine: AsyncEngine
) -> None:
    svix_id, user_id = await failed_event(engine)
    client = await client_for(settings)
    for url in URLS:
        answer = await client.get(url.format(id=svix_id))
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console/login"
        assert svix_id not in answer.text and user_id not in answer.text
    login = await client.get("/console/login")
    assert login.status_code == 200 and 'type="password"' in login.text
    assert svix_id not in login.text and "failed" not in login.text.lower()
    # A forged cookie is no session.
    client.cookies.set("clerk_replica_console", "9999999999.abc.0000", path="/console")
    assert (await client.get("/console/")).status_code == 303


async def test_a_post_without_a_session_or_from_another_site_is_refused(
    client_for: Any, settings: Settings, engine: AsyncEngine
) -> None:
    svix_id, _ = await failed_event(engine)
    client = await client_for(settings)
    for url in ACTIONS:
        answer = await client.post(url.format(id=svix_id), headers=ORIGIN)
        assert answer.status_code == 401, url
    assert (await sign_in(client)).status_code == 303
    for headers in (
        {"origin": "http://evil.example"},
        {"referer": "http://evil.example/console/"},
        {},  # neither header: refused too
        {"origin": "null"},
    ):
        for url in ACTIONS:
            answer = await client.post(url.format(id=svix_id), headers=headers)
            assert answer.status_code == 403, (url, headers)
            assert svix_id not in answer.text and "email" not in answer.text
    assert (await inbox_row(engine, svix_id))["status"] == Status.FAILED.value
    assert await queued_jobs(settings) == 0
    # A login posted from another site is refused before the token is even read.
    other = await client_for(settings)
    refused = await other.post(
        "/console/login", data={"token": TOKEN}, headers={"origin": "http://evil.example"}
    )
    assert refused.status_code == 403 and "set-cookie" not in refused.headers


async def test_a_wrong_token_signs_nobody_in_and_is_logged_without_its_value(
    client_for: Any, settings: Settings, engine: AsyncEngine
) -> None:
    svix_id, _ = await failed_event(engine)
    client = await client_for(settings)
    wrong = "wrong-token-that-is-long-enough"
    with structlog.testing.capture_logs() as logged:
        answer = await sign_in(client, wrong)
    assert answer.status_code == 401 and "set-cookie" not in answer.headers
    assert svix_id not in answer.text and "Not signed in" in answer.text
    assert [e["event"] for e in logged] == ["console.login_refused"]
    assert wrong not in repr(logged) and TOKEN not in repr(logged)
    assert (await client.get("/console/")).status_code == 303


async def test_the_session_cookie_is_strict_httponly_and_accepted_by_another_process(
    client_for: Any, settings: Settings
) -> None:
    client = await client_for(settings)
    answer = await sign_in(client)
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert "max-age=43200" in cookie and "secure" not in cookie
    assert TOKEN.lower() not in cookie
    # Another serve process with the same token: the cookie is good there too.
    other = await client_for(settings)
    other.cookies = client.cookies
    assert (await other.get("/console/")).status_code == 200
    # A process with another token does not accept it.
    changed = settings.updated(console_token=SecretStr("another-token-0123456789abc"))
    third = await client_for(changed)
    third.cookies = client.cookies
    assert (await third.get("/console/")).status_code == 303


async def test_over_https_the_cookie_is_secure(settings: Settings) -> None:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://console.example"
        ) as client,
    ):
        answer = await sign_in(client)
        assert answer.status_code == 303
        assert "secure" in answer.headers["set-cookie"].lower()


async def test_the_first_page_and_replay_of_one_failed_event(
    client_for: Any, settings: Settings, engine: AsyncEngine
) -> None:
    svix_id, user_id = await failed_event(engine)
    client = await client_for(settings)
    await sign_in(client)
    page = await client.get("/console/")
    assert page.status_code == 200
    assert svix_id in page.text and user_id in page.text and "user.created" in page.text
    assert "Replay all failed" in page.text and "<svg" in page.text
    # The error's quoted values are masked; the rest of it stays readable.
    assert "jane@example.com" not in page.text and "Jane Doe" not in page.text
    assert "IntegrityError" in page.text and LEAKY_ERROR not in page.text
    assert "clerk_users" in page.text  # replica counts
    replay = await client.post(f"/console/events/{svix_id}/replay", headers=ORIGIN)
    assert replay.status_code == 303 and "replayed=1" in replay.headers["location"]
    assert (await inbox_row(engine, svix_id))["status"] == Status.PENDING.value
    assert await queued_jobs(settings) == 1
    after = await client.get(replay.headers["location"])
    assert "Re-queued 1 failed event(s)" in after.text and "No failed events." in after.text


async def test_replay_all_failed(client_for: Any, settings: Settings, engine: AsyncEngine) -> None:
    first, _ = await failed_event(engine)
    second, _ = await failed_event(engine, error="PayloadError: id missing")
    client = await client_for(settings)
    await sign_in(client)
    answer = await client.post("/console/replay-failed", headers={"referer": "http://t/console/"})
    assert answer.status_code == 303 and "replayed=2" in answer.headers["location"]
    for svix_id in (first, second):
        assert (await inbox_row(engine, svix_id))["status"] == Status.PENDING.value


async def test_reconcile_now_queues_the_workers_reconcile_job_once(
    client_for: Any, settings: Settings
) -> None:
    client = await client_for(settings)
    await sign_in(client)
    first = await client.post("/console/reconcile", headers=ORIGIN)
    assert first.headers["location"] == "/console/?reconcile=queued"
    second = await client.post("/console/reconcile", headers=ORIGIN)
    assert second.headers["location"] == "/console/?reconcile=already-queued"
    assert await queued_jobs(settings) == 1
    # Without a key nothing can reconcile: the button is off and nothing is queued.
    keyless = settings.updated(clerk_secret_key=None, queue_prefix="keyless")
    other = await client_for(keyless)
    await sign_in(other)
    assert "disabled" in (await other.get("/console/")).text
    refused = await other.post("/console/reconcile", headers=ORIGIN)
    assert refused.headers["location"] == "/console/?reconcile=no-key"
    assert await queued_jobs(keyless) == 0


async def test_an_event_page_shows_the_body_only_when_asked_and_says_when_forgotten(
    client_for: Any, settings: Settings, engine: AsyncEngine
) -> None:
    svix_id, user_id = await failed_event(engine)
    client = await client_for(settings)
    await sign_in(client)
    page = await client.get(f"/console/events/{svix_id}")
    assert page.status_code == 200 and svix_id in page.text and user_id in page.text
    assert "email_addresses" not in page.text and "Show the stored body" in page.text
    # A GET of the body's URL is no way around the click.
    assert (await client.get(f"/console/events/{svix_id}/body")).status_code == 405
    shown = await client.post(f"/console/events/{svix_id}/body", headers=ORIGIN)
    assert shown.status_code == 200 and "email_addresses" in shown.text
    async with engine.begin() as conn:
        await conn.execute(update(inbox).where(inbox.c.svix_id == svix_id).values(body=None))
    forgotten = await client.post(f"/console/events/{svix_id}/body", headers=ORIGIN)
    assert "Forgotten" in forgotten.text and "email_addresses" not in forgotten.text
    missing = await client.get("/console/events/msg_nope")
    assert missing.status_code == 404 and "No such event" in missing.text


async def test_no_console_without_a_token_and_none_with_a_short_one(
    client_for: Any, db_url: str, redis_url: str
) -> None:
    client = await client_for(make_settings(db_url, redis_url))
    assert (await client.get("/console/login")).status_code == 404
    short = "short-secret"
    with pytest.raises(ConfigError) as refused:
        create_app(make_settings(db_url, redis_url, console_token=short))
    assert "CONSOLE_TOKEN" in str(refused.value) and short not in str(refused.value)


async def test_with_a_metrics_port_the_console_is_served_there_only(
    db_url: str, redis_url: str
) -> None:
    web = create_app(console_settings(db_url, redis_url, metrics_port=9090))
    metrics = create_metrics_app(web)
    async with web.router.lifespan_context(web):
        for app, expected in ((web, 404), (metrics, 200)):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as client:
                assert (await client.get("/console/login")).status_code == expected
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=metrics), base_url="http://t"
        ) as client:
            await sign_in(client)
            assert (await client.get("/console/")).status_code == 200
