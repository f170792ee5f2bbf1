"""The web app: declared routes, resources made in the lifespan, nothing connects at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service.config import Settings, get_settings
from service.db import create_engine
from service.ingest.endpoint import IngestState, receive_clerk_webhook
from service.ingest.signature import SignatureVerifier
from service.logs import configure_logging
from service.queue.client import Enqueuer, connect


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    # Fail at construction, not at the first delivery, when the secret is missing or bad.
    verifier = SignatureVerifier(settings.signing_secrets())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings)
        enqueuer = Enqueuer(connect(settings), settings)
        app.state.ingest = IngestState(
            engine=engine,
            verifier=verifier,
            enqueuer=enqueuer,
            max_body_bytes=settings.webhook_max_body_bytes,
        )
        try:
            yield
        finally:
            await enqueuer.close()
            await engine.dispose()

    return Starlette(
        routes=[
            Route("/webhooks/clerk", receive_clerk_webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def app_factory() -> Starlette:
    """Entry point for `uvicorn --factory service.app:app_factory`."""
    settings = get_settings()
    configure_logging(settings)
    return create_app(settings)
