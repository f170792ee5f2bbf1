"""Prometheus metrics. Labels are event types, outcomes and resource names: never ids, emails
or names. Counters live in the process that counts (web: deliveries; worker: applies); the
inbox and reconcile gauges are read from the database at scrape time, so every web process
reports the same numbers. With PROMETHEUS_MULTIPROC_DIR set, processes on one machine share
their counters (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine

from service import status

DELIVERIES = Counter(
    "clerk_replica_deliveries",
    "Webhook deliveries received, by outcome (accepted, duplicate, ignored, refused, unavailable).",
    ["outcome", "reason"],
)
EVENTS = Counter(
    "clerk_replica_events",
    "Events processed by workers, by type and outcome (applied, ignored, failed, retry).",
    ["event_type", "outcome"],
)
APPLY_SECONDS = Histogram(
    "clerk_replica_apply_seconds",
    "Time to apply one event (claim, write, settle).",
    ["event_type"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
LAG_SECONDS = Histogram(
    "clerk_replica_event_lag_seconds",
    "From the delivery's arrival to its effect in the replica.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
RECONCILE_OBJECTS = Counter(
    "clerk_replica_reconcile_objects",
    "Objects changed by reconcile runs in this process, by resource and change.",
    ["resource", "change"],
)

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
