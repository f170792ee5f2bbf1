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
from service.operate.migrate import schema_problem
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
    """The database answers and is at the latest migration, and Redis answers; 503 names what
    does not ("down", or the database's "not migrated" with the fix)."""
    state: WebState = request.app.state.web
    problem: list[str] = []

    async def database() -> None:
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            found = await schema_problem(conn)
        if found is not None:
            problem.append(found)

    checks = {
        "database": await _check("database", database, state.timeout_seconds),
        "redis": await _check("redis", state.enqueuer.ping, state.timeout_seconds),
    }
    if problem:
        checks["database"] = "not migrated"
        checks["reason"] = problem[0]
    ready = all(v == "ok" for k, v in checks.items() if k != "reason")
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)


async def _check(name: str, probe: Callable[[], Awaitable[None]], within: float) -> str:
    try:
        async with asyncio.timeout(within):
            await probe()
    except Exception as exc:
        log.warning("readyz.down", part=name, error=describe(exc))
        return "down"
    return "ok"
