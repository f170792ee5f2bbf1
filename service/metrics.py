"""Prometheus counters. Labels are configured instance names, event types, outcomes and
kind names: never ids, emails or people's names. Counters live in the process that counts
(web: deliveries; worker: applies); the database gauges are read at scrape time
(service/web/metrics_endpoint.py)."""

from __future__ import annotations

import hmac

from prometheus_client import Counter, Histogram

DELIVERIES = Counter(
    "clerk_replica_deliveries",
    "Webhook deliveries received, by instance and outcome (accepted, duplicate, ignored, "
    "refused, unavailable).",
    ["instance", "outcome", "reason"],
)
EVENTS = Counter(
    "clerk_replica_events",
    "Events processed by workers, by instance, type and outcome (applied, ignored, failed, retry).",
    ["instance", "event_type", "outcome"],
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
RECONCILE_REQUESTS = Counter(
    "clerk_replica_reconcile_requests",
    "Backend API requests of reconcile runs in this process, by instance and run mode.",
    ["instance", "mode"],
)
RECONCILE_OBJECTS = Counter(
    "clerk_replica_reconcile_objects",
    "Objects changed by reconcile runs in this process, by instance, kind and change.",
    ["instance", "kind", "change"],
)


def bearer_matches(authorization: bytes, token: bytes | None) -> bool:
    """Whether an Authorization header value is `Bearer <token>` (METRICS_TOKEN), compared as
    bytes in constant time; anything goes when no token is set. Every /metrics checks this."""
    if token is None:
        return True
    return hmac.compare_digest(authorization, b"Bearer " + token)
