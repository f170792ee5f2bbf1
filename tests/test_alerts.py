"""The alerting rules and the dashboard: promtool checks and unit-tests the rules (its
failures are this test's), and every metric they use is one the web or the worker exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.queue import heartbeat
from service.queue.client import connect
from service.reconcile.checkpoints import RunStatus, finish_run, open_run
from tests.support import clerk_payloads as cp
from tests.support.replica_helpers import deliver
from tests.support.signing import signed

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "clerk-replica.json"
# Prometheus's own series (not the service's).
PROMETHEUS_OWN = {"up"}
# A metric name in PromQL: the service's prefix, not a recording rule (those have colons).
METRIC = re.compile(r"(?<![\w:])(clerk_replica_[a-z0-9_]+|up)(?![\w:])")


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: apt-get install -y prometheus (./scripts/test does)"
    return found


def test_the_rules_are_valid_and_pass_their_unit_tests() -> None:
    check = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tested = subprocess.run(
        [promtool(), "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=RULE_TESTS.parent,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_the_issue_asks_for_exists_and_is_unit_tested() -> None:
    alerts = set(re.findall(r"^\s*- alert: (\w+)$", RULES.read_text(), re.M))
    tested = set(re.findall(r"^\s*alertname: (\w+)$", RULE_TESTS.read_text(), re.M))
    assert alerts == tested
    for wanted in (
        "ClerkReplicaDown",
        "ClerkReplicaWorkersDown",
        "ClerkReplicaFailedEvents",
        "ClerkReplicaBacklogGrowing",
        "ClerkReplicaBacklogOld",
        "ClerkReplicaInstanceStalled",
        "ClerkReplicaReconcileFailed",
        "ClerkReplicaReconcileStale",
    ):
        assert wanted in alerts


def expressions() -> list[str]:
    """The rules file without its comments (everything else in it is PromQL, names or
    prose), and each query of the dashboard."""
    found = [re.sub(r"(?m)^\s*#.*$", "", RULES.read_text())]
    dashboard = json.loads(DASHBOARD.read_text())
    found += [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    return found


def registry_names() -> set[str]:
    """What this process's registry exports (the worker's /metrics is exactly that, and the
    web's starts with it): every family, with the suffixes of its type."""
    import service.metrics  # noqa: F401  (registers the counters and histograms)

    names: set[str] = set()
    for family in REGISTRY.collect():
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
    return names


async def test_every_metric_the_rules_and_dashboard_use_is_exported(
    client_for: Any, settings: Settings, engine: AsyncEngine
) -> None:
    # Give every database gauge something to report: a delivery, a completed reconcile, a
    # worker's heartbeat.
    client = await client_for(settings)
    body, headers = signed(cp.envelope("user.created", cp.user()))
    assert (await client.post("/webhooks/clerk", content=body, headers=headers)).status_code == 200
    await deliver(engine, cp.envelope("user.updated", cp.user(updated_at=cp.T0 + 1)))
    async with engine.begin() as conn:
        run_id, _ = await open_run(conn, trigger="cli", kinds=["users"], restart=False)
        await finish_run(conn, run_id, status=RunStatus.COMPLETED, summary={}, error=None)
    redis = connect(settings)
    try:
        await heartbeat.beat(redis, settings, "test-worker", time.time())
    finally:
        await redis.aclose()
        await redis.connection_pool.disconnect()
    scraped = (await client.get("/metrics")).text
    web = {s.name for f in text_string_to_metric_families(scraped) for s in f.samples}
    exported = web | registry_names()
    used = {name for expr in expressions() for name in METRIC.findall(expr)}
    assert used - PROMETHEUS_OWN, "no metric found in the rules: the pattern is wrong"
    assert used - PROMETHEUS_OWN <= exported, sorted(used - PROMETHEUS_OWN - exported)
    for new in (
        "clerk_replica_last_delivery_timestamp_seconds",
        "clerk_replica_reconcile_last_success_timestamp_seconds",
        "clerk_replica_worker_last_heartbeat_timestamp_seconds",
        "clerk_replica_workers_alive",
    ):
        assert new in web and new in used


def test_the_dashboard_is_grafana_json_with_a_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "clerk-replica" and dashboard["panels"]
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource"}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
