"""Liveness and readiness probes. They say what is down, never why: the reason (a driver's
message with hosts, ports and user names) goes to the log, not to whoever can reach the probe."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from service.db.errors import describe
from service.logs import get_logger
from service.web.state import WebState

log = get_logger(__name__)


async def healthz(request: Request) -> JSONResponse:
    """The process is up and can still make deliveries durable: its inbox writer runs (the
    database is not checked: liveness, not readiness)."""
    state: WebState = request.app.state.web
    if not state.inbox.alive():
        return JSONResponse({"status": "down", "inbox_writer": "down"}, status_code=503)
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """The database and Redis answer; 503 names what does not ("down")."""
    state: WebState = request.app.state.web

    async def database() -> None:
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    checks = {
        "database": await _check("database", database, state.timeout_seconds),
        "redis": await _check("redis", state.enqueuer.ping, state.timeout_seconds),
    }
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)


async def _check(name: str, probe: Callable[[], Awaitable[None]], within: float) -> str:
    try:
        async with asyncio.timeout(within):
            await probe()
    except Exception as exc:
        log.warning("readyz.down", part=name, error=describe(exc))
        return "down"
    return "ok"
