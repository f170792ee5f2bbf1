"""The apps as declared: their routes, and what the lifespan says at start-up."""

from __future__ import annotations

from typing import Any

import httpx
import structlog
from starlette.routing import Route

from service.config import Settings
from service.web.app import create_app, create_metrics_app
from tests.support.settings import make_settings
from tests.support.signing import PREVIOUS_SECRET


async def test_a_previous_signing_secret_is_warned_about_while_it_is_set(
    client_for: Any, settings: Settings
) -> None:
    assert settings.clerk.webhook_signing_secret_previous is not None
    with structlog.testing.capture_logs() as logged:
        await client_for(settings)
    (line,) = [e for e in logged if e["event"] == "config.previous_signing_secret_set"]
    assert line["log_level"] == "warning"
    assert line["variable"] == "CLERK_WEBHOOK_SIGNING_SECRET_PREVIOUS"
    assert PREVIOUS_SECRET not in repr(logged)


async def test_no_warning_without_a_previous_secret(client_for: Any, settings: Settings) -> None:
    only_current = settings.updated(clerk_webhook_signing_secret_previous=None)
    with structlog.testing.capture_logs() as logged:
        client = await client_for(only_current)
    assert [e for e in logged if e["event"] == "config.previous_signing_secret_set"] == []
    assert (await client.get("/healthz")).status_code == 200


async def test_with_a_metrics_port_metrics_leave_the_web_app_for_the_metrics_app(
    db_url: str, redis_url: str
) -> None:
    # METRICS_PORT only shapes the apps here: nothing binds it.
    web = create_app(make_settings(db_url, redis_url, metrics_port=9090, metrics_token="t"))
    assert "/metrics" not in {r.path for r in web.routes if isinstance(r, Route)}
    app = create_metrics_app(web)
    assert [(r.path, r.methods) for r in app.routes if isinstance(r, Route)] == [
        ("/metrics", {"GET", "HEAD"})
    ]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://metrics"
    ) as metrics:
        # Nothing to answer from before the web app's lifespan has made its state.
        assert (await metrics.get("/metrics")).status_code == 503
        async with web.router.lifespan_context(web):
            # The metrics app has no settings of its own: the token is the web app's.
            assert (await metrics.get("/metrics")).status_code == 401
            scrape = await metrics.get("/metrics", headers={"authorization": "Bearer t"})
            assert scrape.status_code == 200 and "clerk_replica_inbox_events" in scrape.text
