"""The metrics reference: every Prometheus family the service defines, found in its source
(counters and histograms in service/metrics.py, the gauges read from the database at scrape
time), so a family added anywhere is listed."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from docs_gen.markdown import code, page, plain, table

SERVICE = Path(__file__).resolve().parent.parent / "service"
# The constructor, the kind Prometheus shows, and the suffix the exposition adds.
KINDS = {
    "Counter": ("counter", "_total"),
    "Histogram": ("histogram", "_bucket, _sum, _count"),
    "Gauge": ("gauge", ""),
    "Summary": ("summary", "_sum, _count"),
    "GaugeMetricFamily": ("gauge", ""),
    "CounterMetricFamily": ("counter", "_total"),
}


@dataclass(frozen=True)
class Family:
    name: str
    kind: str
    suffix: str
    help: str
    labels: tuple[str, ...]
    where: str


def _labels(call: ast.Call) -> tuple[str, ...]:
    node: ast.expr | None = call.args[2] if len(call.args) > 2 else None
    for keyword in call.keywords:
        if keyword.arg in ("labels", "labelnames"):
            node = keyword.value
    if isinstance(node, ast.List | ast.Tuple):
        return tuple(str(e.value) for e in node.elts if isinstance(e, ast.Constant))
    return ()


def families(root: Path = SERVICE) -> list[Family]:
    found: list[Family] = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name not in KINDS or len(node.args) < 2:
                continue
            metric, helptext = node.args[0], node.args[1]
            if not (isinstance(metric, ast.Constant) and isinstance(helptext, ast.Constant)):
                raise ValueError(f"{path}: a {name} whose name or help is not a literal")
            kind, suffix = KINDS[name]
            where = str(path.relative_to(root.parent))
            found.append(
                Family(str(metric.value), kind, suffix, str(helptext.value), _labels(node), where)
            )
    return sorted(found, key=lambda f: f.name)


def render() -> str:
    rows = [
        (
            code(f.name),
            f.kind,
            f.suffix,
            ", ".join(code(label) for label in f.labels),
            plain(f.help),
        )
        for f in families()
    ]
    return page(
        "Metrics",
        """
`GET /metrics` answers in Prometheus's text format: on the main port, or with `METRICS_PORT`
on that port only; the worker serves its own with `WORKER_METRICS_PORT`. With `METRICS_TOKEN`
set, a scrape needs `Authorization: Bearer <token>`. Labels are configured instance names,
event types, outcomes and kinds: never ids, emails or names.

Counters and histograms live in the process that counts (web: deliveries; worker: events and
reconcile objects). The gauges are read from the database at scrape time, at most once per
`METRICS_CACHE_SECONDS` per process, so every web process reports the same values.
""",
        table(("family", "type", "series suffixes", "labels", "meaning"), rows),
    )
