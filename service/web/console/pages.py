"""The console's routes under /console: the login form, the first page, an event's page, and
the actions (replay, replay all failed, reconcile now), each a POST.

Invariants: without a valid session cookie every URL but the login form answers nothing about
the replica (a GET is sent to the login form, a POST gets 401); every POST, the login's too,
must come from a page of this host (Origin or Referer), else 403; a refused login is logged
with the client's address, never with what was typed; no personal data goes into a URL.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.templating import Jinja2Templates

from service.config import Settings
from service.db.dialect import dialect_of
from service.db.errors import describe
from service.inbox import store
from service.logs import get_logger
from service.operate import events, overview
from service.web.console import charts, formatting
from service.web.console.session import COOKIE, Door, same_origin
from service.web.state import WebState

log = get_logger(__name__)

PREFIX = "/console"
FAILED_SHOWN = 20
RUNS_SHOWN = 8
_MAX_FORM_BYTES = 4096
_HEADERS = {
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
}
Handler = Callable[[Request], Awaitable[Response]]

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
formatting.install(templates.env)


def console_mount(settings: Settings, door: Door, web: State) -> Mount:
    """The console's routes, answered from the web app's state `web` (its engine and Redis)."""
    pages = _Pages(settings, door, web)
    return Mount(
        PREFIX,
        routes=[
            Route("/login", pages.login_form, methods=["GET"]),
            Route("/login", pages.login, methods=["POST"]),
            Route("/logout", pages.guard(pages.logout), methods=["POST"]),
            Route("/", pages.guard(pages.overview), methods=["GET"]),
            Route("/events/{svix_id}", pages.guard(pages.event), methods=["GET"]),
            Route("/events/{svix_id}/body", pages.guard(pages.event), methods=["POST"]),
            Route("/events/{svix_id}/replay", pages.guard(pages.replay), methods=["POST"]),
            Route("/replay-failed", pages.guard(pages.replay), methods=["POST"]),
            Route("/reconcile", pages.guard(pages.reconcile), methods=["POST"]),
        ],
    )


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form (the console's forms hold a token at most)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            break
    fields = parse_qs(body[:_MAX_FORM_BYTES].decode(errors="replace"))
    return {name: values[0] for name, values in fields.items()}


def _pretty(body: str | None) -> str | None:
    """A JSON body indented for reading (as stored when it is not JSON)."""
    if body is None:
        return None
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


def _redirect(path: str, **notice: str | int) -> RedirectResponse:
    query = f"?{urlencode(notice)}" if notice else ""
    return RedirectResponse(f"{PREFIX}{path}{query}", status_code=303, headers=_HEADERS)


class _Pages:
    def __init__(self, settings: Settings, door: Door, web: State) -> None:
        self.settings, self.door, self.web = settings, door, web
        self.keyed = [s.instance_name for s in settings.instances() if s.clerk.secret_key]

    def state(self) -> WebState:
        state: WebState = self.web.web
        return state

    def signed_in(self, request: Request) -> bool:
        return self.door.valid(request.cookies.get(COOKIE))

    def guard(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            if not self.signed_in(request):
                if request.method == "GET":
                    return _redirect("/login")
                return PlainTextResponse("not signed in", status_code=401, headers=_HEADERS)
            if request.method == "POST" and not same_origin(request):
                log.warning("console.cross_origin_refused", path=request.url.path)
                return PlainTextResponse("refused: not from this site", 403, headers=_HEADERS)
            if getattr(self.web, "web", None) is None:
                return PlainTextResponse("starting", status_code=503, headers=_HEADERS)
            return await handler(request)

        return guarded

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        return templates.TemplateResponse(
            request, name, {"prefix": PREFIX, **context}, status_code=status, headers=_HEADERS
        )

    async def login_form(self, request: Request) -> Response:
        if self.signed_in(request):
            return _redirect("/")
        return self.render(request, "login.html")

    async def login(self, request: Request) -> Response:
        if not same_origin(request):
            return PlainTextResponse("refused: not from this site", 403, headers=_HEADERS)
        given = (await _form(request)).get("token", "")
        client = request.client.host if request.client else None
        if not self.door.token_matches(given):
            log.warning("console.login_refused", client=client)
            return self.render(request, "login.html", status=401, refused=True)
        log.info("console.login", client=client)
        response = _redirect("/")
        response.set_cookie(
            COOKIE,
            self.door.new_cookie(),
            max_age=int(self.door.session_seconds),
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request) -> Response:
        response = _redirect("/login")
        response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    async def read(self, work: Callable[[AsyncConnection], Awaitable[Any]]) -> Any:
        """Run `work` on one connection, each statement bounded by the probes' timeout x4."""
        limit = self.state().timeout_seconds * 4
        async with asyncio.timeout(limit * 3), self.state().engine.connect() as conn:
            await dialect_of(conn).limit_statement_time(conn, limit)
            return await work(conn)

    async def overview(self, request: Request) -> Response:
        now = datetime.now(UTC)
        names = self.settings.instance_names()

        async def gather(conn: AsyncConnection) -> dict[str, Any]:
            buckets = await overview.activity(conn, now)
            return {
                "health": await overview.health(conn, names, now, buckets),
                "failed": await events.failed_events(conn, FAILED_SHOWN),
                "runs": await overview.reconcile_runs(conn, RUNS_SHOWN),
                "tables": await overview.replica_counts(conn),
                "buckets": buckets,
            }

        found = await self.read(gather)
        buckets = found.pop("buckets")
        minutes = overview.BUCKET_SECONDS / 60
        workers: dict[str, Any] | None = None
        with suppress(Exception):
            workers = await self.state().enqueuer.workers()
        return self.render(
            request,
            "overview.html",
            now=now,
            stale_delivery=self.settings.console.stale_delivery_hours * 3600,
            stale_reconcile=self.settings.console.stale_reconcile_hours * 3600,
            keyed=self.keyed,
            workers=workers,
            notice=dict(request.query_params),
            deliveries_chart=charts.bars(
                [b.deliveries / minutes for b in buckets], label="deliveries", unit="/min"
            ),
            lag_chart=charts.line([b.lag_avg for b in buckets], label="average lag", unit="s"),
            chart_start=buckets[0].start if buckets else now,
            **found,
        )

    async def event(self, request: Request) -> Response:
        svix_id = request.path_params["svix_id"]
        show_body = request.method == "POST"

        async def gather(conn: AsyncConnection) -> tuple[Any, str | None]:
            found = await events.event(conn, svix_id)
            body = await events.event_body(conn, svix_id) if found and show_body else None
            return found, body

        found, body = await self.read(gather)
        if found is None:
            return self.render(request, "event.html", status=404, event=None, svix_id=svix_id)
        if show_body:
            log.info("console.body_shown", svix_id=svix_id)
            body = _pretty(body)
        return self.render(
            request,
            "event.html",
            event=found,
            show_body=show_body,
            body=body,
            now=datetime.now(UTC),
        )

    async def replay(self, request: Request) -> Response:
        svix_id = request.path_params.get("svix_id")
        async with self.state().engine.begin() as conn:
            ids = await store.requeue(conn, svix_id=svix_id)
        queued = True
        if ids:
            try:
                await self.state().enqueuer.wake()
            except Exception as exc:  # they stay pending: the worker's sweep queues them
                queued = False
                log.warning("console.replay_wake_failed", error=describe(exc))
        log.info("console.replayed", events=len(ids), svix_id=svix_id)
        return _redirect("/", replayed=len(ids), woken=int(queued))

    async def reconcile(self, request: Request) -> Response:
        if not self.keyed:
            return _redirect("/", reconcile="no-key")
        try:
            queued = await self.state().enqueuer.reconcile_now("console")
        except Exception as exc:
            log.warning("console.reconcile_not_queued", error=describe(exc))
            return _redirect("/", reconcile="redis-down")
        log.info("console.reconcile_queued", queued=queued)
        return _redirect("/", reconcile="queued" if queued else "already-queued")
