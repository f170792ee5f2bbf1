"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from service.db.errors import describe
from service.web.state import WebState


async def healthz(_request: Request) -> JSONResponse:
    """The process is up (nothing else is checked: liveness, not readiness)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """The database and Redis answer; 503 names what does not."""
    state: WebState = request.app.state.web
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(state.timeout_seconds):
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = describe(exc)
    try:
        async with asyncio.timeout(state.timeout_seconds):
            await state.enqueuer.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = describe(exc)
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)
