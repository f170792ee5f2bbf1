"""GET /metrics: this process's counters, and gauges read from the database and the workers'
heartbeats (cached briefly), so every web process reports the same inbox, reconcile, delivery
time and worker liveness numbers. Served by the web app, or
with METRICS_PORT by an app of its own on that port (same token, same gauges). With
PROMETHEUS_MULTIPROC_DIR set, processes on one machine share their counters
(prometheus-client's multiprocess mode)."""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

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
from service.web.state import Gauges, WebState

log = get_logger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
# The families read from the database: served again while it does not answer.
_DATABASE_NAMES = frozenset(
    {
        "clerk_replica_inbox_events",
        "clerk_replica_inbox_instance_events",
        "clerk_replica_inbox_oldest_pending_age_seconds",
        "clerk_replica_reconcile_last_run_ok",
        "clerk_replica_reconcile_last_run_failed",
        "clerk_replica_reconcile_last_run_objects",
        "clerk_replica_reconcile_last_success_timestamp_seconds",
        "clerk_replica_last_delivery_timestamp_seconds",
    }
)


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
    full = GaugeMetricFamily(
        "clerk_replica_reconcile_last_full_run_completed_timestamp_seconds",
        "When the instance's last full reconcile (every object listed) completed, Unix time.",
        labels=["instance"],
    )
    failed = GaugeMetricFamily(
        "clerk_replica_reconcile_last_run_failed",
        "1 if the instance's last reconcile ended failed (0 while one runs or after success).",
        labels=["instance"],
    )
    succeeded = GaugeMetricFamily(
        "clerk_replica_reconcile_last_success_timestamp_seconds",
        "Unix time the instance's last completed reconcile finished (absent: never).",
        labels=["instance"],
    )
    for instance in instances:
        run = await status.last_reconcile(
            engine, timeout_seconds=statement_seconds, instance=instance
        )
        if run is None:
            continue
        ok.add_metric([instance], 1 if run["status"] == "completed" else 0)
        failed.add_metric([instance], 1 if run["status"] == "failed" else 0)
        for change in ("created", "updated", "tombstoned"):
            changed.add_metric([instance, change], run["totals"][change])
        if run["last_full_completed_at"] is not None:
            at = datetime.fromisoformat(run["last_full_completed_at"])
            full.add_metric([instance], at.timestamp())
        finished = await status.last_success(
            engine, timeout_seconds=statement_seconds, instance=instance
        )
        if finished is not None:
            succeeded.add_metric([instance], finished.timestamp())
    delivered = GaugeMetricFamily(
        "clerk_replica_last_delivery_timestamp_seconds",
        "Unix time the instance's newest delivery still in the inbox was received.",
        labels=["instance"],
    )
    for instance in instances:
        received = summary["last_received_at"].get(instance)
        if received is not None:
            delivered.add_metric([instance], datetime.fromisoformat(received).timestamp())
    return [inbox, per_instance, oldest, ok, failed, changed, full, succeeded, delivered]


async def _worker_families(workers: Callable[[], Awaitable[dict[str, Any]]]) -> list[Metric]:
    found = await workers()
    alive = GaugeMetricFamily(
        "clerk_replica_workers_alive",
        "Workers whose heartbeat is recent (within three WORKER_HEARTBEAT_SECONDS).",
        value=found["alive"],
    )
    families: list[Metric] = [alive]
    if found["last_heartbeat"] is not None:
        families.append(
            GaugeMetricFamily(
                "clerk_replica_worker_last_heartbeat_timestamp_seconds",
                "Unix time of the newest worker heartbeat (absent: none for a day).",
                value=found["last_heartbeat"],
            )
        )
    return families


class DatabaseGauges:
    """The gauges read from the database, at most once per `ttl_seconds` per process, each
    read bounded by `timeout_seconds`: however often (and however many) scrapers ask, the
    database answers one small query set per period, and a slow database cannot hold scrapes
    or pool connections. While the database does not answer, the last gauges read are served.
    The workers' liveness (their heartbeats in Redis) is read alongside, on its own.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        ttl_seconds: float,
        timeout_seconds: float,
        instances: Sequence[str] = (DEFAULT_INSTANCE,),
        workers: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    ) -> None:
        self.engine, self.ttl, self.timeout = engine, ttl_seconds, timeout_seconds
        self.instances = tuple(instances)
        self.workers = workers  # reads the workers' heartbeats (Redis)
        self._read_at = -math.inf
        self._families: list[Metric] = []
        self._lock = asyncio.Lock()

    async def families(self) -> list[Metric]:
        if time.monotonic() - self._read_at < self.ttl:
            return self._families
        async with self._lock:  # concurrent scrapes share one read
            if time.monotonic() - self._read_at < self.ttl:
                return self._families
            families: list[Metric] = []
            try:
                async with asyncio.timeout(self.timeout):
                    families = await _database_families(self.engine, self.timeout, self.instances)
            except Exception as exc:
                log.warning("metrics.database_unavailable", error=describe(exc))
                families = [f for f in self._families if f.name in _DATABASE_NAMES]
            if self.workers is not None:
                try:
                    families += await _worker_families(self.workers)
                except Exception as exc:
                    log.warning("metrics.redis_unavailable", error=describe(exc))
            self._families = families
            self._read_at = time.monotonic()  # a failed read waits its period too
            return self._families


async def render(gauges: Gauges) -> bytes:
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
