"""The web app: declared routes, resources made in the lifespan, nothing connects at import."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service import metrics
from service.apply.errors import describe
from service.config import Settings, get_settings
from service.db import create_engine
from service.inbox.writer import InboxWriter
from service.ingest.body import BodyReader
from service.ingest.endpoint import IngestState, WebhookEndpoint
from service.ingest.signature import SignatureVerifier
from service.logs import configure_logging
from service.queue.client import Enqueuer, connect


async def healthz(_request: Request) -> JSONResponse:
    """The process is up (nothing else is checked: liveness, not readiness)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """The database and Redis answer; 503 names what does not."""
    ingest: IngestState = request.app.state.ingest
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(ingest.timeout_seconds):
            async with ingest.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = describe(exc)
    try:
        async with asyncio.timeout(ingest.timeout_seconds):
            await ingest.enqueuer.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = describe(exc)
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)


async def metrics_endpoint(request: Request) -> Response:
    ingest: IngestState = request.app.state.ingest
    token = ingest.metrics_token
    if token is not None and not hmac.compare_digest(
        request.headers.get("authorization", ""), f"Bearer {token}"
    ):
        return JSONResponse({"error": "unauthorized"}, status_code=401)
    return Response(await metrics.render(ingest.engine), media_type=metrics.CONTENT_TYPE)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    # Fail at construction, not at the first delivery, when the secret is missing or bad.
    verifier = SignatureVerifier(settings.signing_secrets())
    webhook = WebhookEndpoint()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings)
        enqueuer = Enqueuer(connect(settings), settings)
        inbox = InboxWriter(engine)
        bodies = BodyReader(settings.webhook_max_body_bytes, settings.webhook_read_timeout_seconds)
        app.state.ingest = webhook.ingest = IngestState(
            engine=engine,
            inbox=inbox,
            verifier=verifier,
            enqueuer=enqueuer,
            bodies=bodies,
            timeout_seconds=settings.db_connect_timeout_seconds,
            metrics_token=(
                settings.metrics_token.get_secret_value() if settings.metrics_token else None
            ),
        )
        try:
            yield
        finally:
            await bodies.close()
            await inbox.close()
            await enqueuer.close()
            await engine.dispose()

    return Starlette(
        routes=[
            Route("/webhooks/clerk", webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def app_factory() -> Starlette:
    """Entry point for `uvicorn --factory service.app:app_factory`."""
    settings = get_settings()
    configure_logging(settings)
    return create_app(settings)
