"""GET /metrics: this process's counters, and gauges read from the database (cached briefly),
so every web process reports the same inbox and reconcile numbers. Served by the web app, or
with METRICS_PORT by an app of its own on that port (same token, same gauges). With
PROMETHEUS_MULTIPROC_DIR set, processes on one machine share their counters
(prometheus-client's multiprocess mode)."""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.config import DEFAULT_INSTANCE
from service.db.errors import describe
from service.logs import get_logger
from service.metrics import bearer_matches
from service.operate import status
from service.web.state import WebState

log = get_logger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class _Static(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


async def _database_families(
    engine: AsyncEngine, statement_seconds: float, instances: Sequence[str]
) -> list[Metric]:
    summary = await status.inbox_summary(engine, timeout_seconds=statement_seconds)
    inbox = GaugeMetricFamily(
        "clerk_replica_inbox_events", "Inbox events by status.", labels=["status"]
    )
    for name, count in summary["by_status"].items():
        inbox.add_metric([name], count)
    per_instance = GaugeMetricFamily(
        "clerk_replica_inbox_instance_events",
        "Inbox events by the instance whose endpoint took them, and status.",
        labels=["instance", "status"],
    )
    for instance in instances:
        counts = summary["by_instance"].get(instance, {})
        for name in summary["by_status"]:
            per_instance.add_metric([instance, name], counts.get(name, 0))
    oldest = GaugeMetricFamily(
        "clerk_replica_inbox_oldest_pending_age_seconds",
        "Age of the oldest event not yet applied (0 when none).",
        value=summary["oldest_pending_age_seconds"] or 0,
    )
    ok = GaugeMetricFamily(
        "clerk_replica_reconcile_last_run_ok",
        "1 if the instance's last reconcile completed every type, else 0.",
        labels=["instance"],
    )
    changed = GaugeMetricFamily(
        "clerk_replica_reconcile_last_run_objects",
        "Objects the instance's last reconcile changed, by change.",
        labels=["instance", "change"],
    )
    for instance in instances:
        run = await status.last_reconcile(
            engine, timeout_seconds=statement_seconds, instance=instance
        )
        if run is None:
            continue
        ok.add_metric([instance], 1 if run["status"] == "completed" else 0)
        for change in ("created", "updated", "tombstoned"):
            changed.add_metric([instance, change], run["totals"][change])
    return [inbox, per_instance, oldest, ok, changed]


class DatabaseGauges:
    """The gauges read from the database, at most once per `ttl_seconds` per process, each
    read bounded by `timeout_seconds`: however often (and however many) scrapers ask, the
    database answers one small query set per period, and a slow database cannot hold scrapes
    or pool connections. While the database does not answer, the last gauges read are served.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        ttl_seconds: float,
        timeout_seconds: float,
        instances: Sequence[str] = (DEFAULT_INSTANCE,),
    ) -> None:
        self.engine, self.ttl, self.timeout = engine, ttl_seconds, timeout_seconds
        self.instances = tuple(instances)
        self._read_at = -math.inf
        self._families: list[Metric] = []
        self._lock = asyncio.Lock()

    async def families(self) -> list[Metric]:
        if time.monotonic() - self._read_at < self.ttl:
            return self._families
        async with self._lock:  # concurrent scrapes share one read
            if time.monotonic() - self._read_at < self.ttl:
                return self._families
            try:
                async with asyncio.timeout(self.timeout):
                    self._families = await _database_families(
                        self.engine, self.timeout, self.instances
                    )
            except Exception as exc:
                log.warning("metrics.database_unavailable", error=describe(exc))
            self._read_at = time.monotonic()  # a failed read waits its period too
            return self._families


async def render(gauges: DatabaseGauges) -> bytes:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        process_registry = CollectorRegistry()
        MultiProcessCollector(process_registry)  # type: ignore[no-untyped-call]
    else:
        process_registry = REGISTRY
    database = CollectorRegistry()
    database.register(_Static(await gauges.families()))
    return generate_latest(process_registry) + generate_latest(database)


def authorized(scope_headers: list[tuple[bytes, bytes]], token: bytes | None) -> bool:
    """Whether the request carries `Authorization: Bearer <token>`, compared as bytes in
    constant time (any header, non-ASCII included, is just bytes that do not match)."""
    given = next((v for k, v in scope_headers if k.lower() == b"authorization"), b"")
    return bearer_matches(given, token)


async def metrics_endpoint(request: Request) -> Response:
    """GET /metrics on the web app itself (no METRICS_PORT)."""
    return await _answer(request.app.state.web, request)


def metrics_endpoint_for(web: State) -> Callable[[Request], Awaitable[Response]]:
    """GET /metrics of the METRICS_PORT app, answered from the web app's state `web`: the
    web app's token and its cached gauges, so a process reads the database once per period
    whichever app answers. 503 until the web app's lifespan has made that state."""

    async def endpoint(request: Request) -> Response:
        state: WebState | None = getattr(web, "web", None)
        if state is None:
            return JSONResponse({"error": "starting"}, status_code=503)
        return await _answer(state, request)

    return endpoint


async def _answer(state: WebState, request: Request) -> Response:
    if not authorized(request.scope["headers"], state.metrics_token):
        return JSONResponse({"error": "unauthorized"}, status_code=401)
    return Response(await render(state.gauges), media_type=CONTENT_TYPE)
