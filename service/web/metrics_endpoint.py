"""GET /metrics: this process's counters, and gauges read from the database at scrape time,
so every web process reports the same inbox and reconcile numbers. With
PROMETHEUS_MULTIPROC_DIR set, processes on one machine share their counters
(prometheus-client's multiprocess mode)."""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.operate import status
from service.web.state import WebState

CONTENT_TYPE = CONTENT_TYPE_LATEST


class _Static(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


async def _database_families(engine: AsyncEngine) -> list[Metric]:
    summary = await status.inbox_summary(engine)
    inbox = GaugeMetricFamily(
        "clerk_replica_inbox_events", "Inbox events by status.", labels=["status"]
    )
    for name, count in summary["by_status"].items():
        inbox.add_metric([name], count)
    oldest = GaugeMetricFamily(
        "clerk_replica_inbox_oldest_pending_age_seconds",
        "Age of the oldest event not yet applied (0 when none).",
        value=summary["oldest_pending_age_seconds"] or 0,
    )
    families: list[Metric] = [inbox, oldest]
    run = await status.last_reconcile(engine)
    if run is not None:
        families.append(
            GaugeMetricFamily(
                "clerk_replica_reconcile_last_run_ok",
                "1 if the last reconcile completed every type, else 0.",
                value=1 if run["status"] == "completed" else 0,
            )
        )
        changed = GaugeMetricFamily(
            "clerk_replica_reconcile_last_run_objects",
            "Objects the last reconcile changed, by change.",
            labels=["change"],
        )
        for change in ("created", "updated", "tombstoned"):
            changed.add_metric([change], run["totals"][change])
        families.append(changed)
    return families


async def render(engine: AsyncEngine) -> bytes:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        process_registry = CollectorRegistry()
        MultiProcessCollector(process_registry)  # type: ignore[no-untyped-call]
    else:
        process_registry = REGISTRY
    database = CollectorRegistry()
    database.register(_Static(await _database_families(engine)))
    return generate_latest(process_registry) + generate_latest(database)


async def metrics_endpoint(request: Request) -> Response:
    state: WebState = request.app.state.web
    token = state.metrics_token
    if token is not None and not hmac.compare_digest(
        request.headers.get("authorization", ""), f"Bearer {token}"
    ):
        return JSONResponse({"error": "unauthorized"}, status_code=401)
    return Response(await render(state.engine), media_type=CONTENT_TYPE)
