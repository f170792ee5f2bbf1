"""The web app: declared routes, resources made in the lifespan, nothing connects at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from service.config import Settings, get_settings, instance_variable, webhook_path
from service.db.engine import create_engine
from service.inbox.writer import InboxWriter
from service.ingest.body import BodyReader
from service.ingest.endpoint import IngestState, WebhookEndpoint
from service.ingest.signature import SignatureVerifier
from service.logs import get_logger
from service.queue.client import Enqueuer, connect
from service.web.console.pages import PREFIX as CONSOLE_PREFIX
from service.web.console.pages import console_mount
from service.web.console.session import door_of
from service.web.metrics_endpoint import DatabaseGauges, metrics_endpoint, metrics_endpoint_for
from service.web.probes import healthz, readyz
from service.web.state import WebState

log = get_logger(__name__)


def create_app(settings: Settings | None = None) -> Starlette:
    """The web app: one webhook endpoint per instance, probes, and /metrics and the console
    (with CONSOLE_TOKEN) unless METRICS_PORT moves them to the metrics app."""
    settings = settings or get_settings()
    door = door_of(settings)  # a CONSOLE_TOKEN too short stops serve here
    # Fail at construction, not at the first delivery, when a secret is missing or bad.
    webhooks = [
        WebhookEndpoint(
            each.instance_name,
            SignatureVerifier(
                each.signing_secrets(),
                instance_variable(each.instance_name, "WEBHOOK_SIGNING_SECRET"),
            ),
        )
        for each in settings.instances()
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings)
        enqueuer = Enqueuer(connect(settings), settings)
        inbox = InboxWriter(
            engine,
            timeout_seconds=settings.ingest.db_timeout_seconds,
            max_waiting=settings.ingest.max_waiting,
        )
        bodies = BodyReader(settings.ingest.max_body_bytes, settings.ingest.read_timeout_seconds)
        shared = IngestState(
            engine=engine,
            inbox=inbox,
            enqueuer=enqueuer,
            bodies=bodies,
            store_private_metadata=settings.database.store_private_metadata,
        )
        for webhook in webhooks:
            webhook.ingest = shared
        app.state.web = WebState(
            engine=engine,
            inbox=inbox,
            enqueuer=enqueuer,
            timeout_seconds=settings.database.connect_timeout_seconds,
            gauges=DatabaseGauges(
                engine,
                settings.metrics.cache_seconds,
                settings.database.connect_timeout_seconds,
                settings.instance_names(),
                workers=enqueuer.workers,
            ),
            metrics_token=(
                settings.metrics.token.get_secret_value().encode()
                if settings.metrics.token
                else None
            ),
        )
        for each in settings.instances():
            if each.clerk.webhook_signing_secret_previous is not None:
                # A rotation should end: an old secret that stays accepted stays a way in.
                log.warning(
                    "config.previous_signing_secret_set",
                    instance=each.instance_name,
                    variable=instance_variable(
                        each.instance_name, "WEBHOOK_SIGNING_SECRET_PREVIOUS"
                    ),
                    hint="unset it once Clerk signs with the new secret only",
                )
        try:
            yield
        finally:
            await bodies.close()
            await inbox.close()
            await enqueuer.close()
            await engine.dispose()

    routes = [
        *(Route(webhook_path(w.instance), w, methods=["POST"]) for w in webhooks),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    if settings.metrics.port is None:
        # With METRICS_PORT the public app has no /metrics: create_metrics_app serves it.
        routes.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.console = None
    if door is not None:
        console = console_mount(settings, door, app.state)
        if settings.metrics.port is None:
            app.router.routes.append(console)
        else:
            app.state.console = console  # for create_metrics_app
        log.info(
            "console.enabled",
            path=CONSOLE_PREFIX,
            port=settings.metrics.port if settings.metrics.port is not None else "main",
        )
    return app


def create_metrics_app(web: Starlette) -> Starlette:
    """The app of METRICS_PORT: GET /metrics (and the console, with CONSOLE_TOKEN), answered
    from the state `web`'s lifespan makes and closes (its token, its cached gauges, its engine);
    it has no lifespan of its own."""
    routes: list[BaseRoute] = [Route("/metrics", metrics_endpoint_for(web.state), methods=["GET"])]
    if web.state.console is not None:
        routes.append(web.state.console)
    return Starlette(routes=routes)
