"""docs/benchmarks.md: one table per benchmark in tests/benchmarks/, from the JSON file its last
run recorded (docs/benchmarks/<name>.json); "not yet measured" when there is none."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from docs_gen.markdown import page, table

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "tests" / "benchmarks"
RESULTS = ROOT / "docs" / "benchmarks"


def _summary(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip()


def _section(path: Path, results: Path) -> str:
    name = path.stem
    head = f"## {name}\n\n{_summary(path)}\n\n`.venv/bin/python -m tests.benchmarks.{name}`"
    recorded = results / f"{name}.json"
    if not recorded.exists():
        return f"{head}\n\nNot yet measured."
    result = json.loads(recorded.read_text())
    machine = result["machine"]
    facts = (
        f"Measured {result['date']} on {machine['cores']} cores ({machine['cpu']}), "
        f"{machine['system']}, Python {machine['python']}: {result['title']}."
    )
    return f"{head}\n\n{facts}\n\n{table(result['header'], result['rows'])}"


def render(benchmarks: Path = BENCHMARKS, results: Path = RESULTS) -> str:
    sections = [_section(p, results) for p in sorted(benchmarks.glob("bench_*.py"))]
    return page(
        "Benchmarks",
        """
`./scripts/bench` runs every benchmark (or one: `.venv/bin/python -m tests.benchmarks.NAME`).
Each starts real servers (throwaway PostgreSQL and Redis unless `TEST_POSTGRES_URL` /
`TEST_REDIS_URL` are set), runs the real `clerk-replica` processes, and measures every figure
beside a baseline taken in the same run: the machines are shared and noisy, so a ratio to the
baseline travels better than an absolute number. Medians and spreads are in the figures' names.

Each run records its table in `docs/benchmarks/<name>.json`; `./scripts/docs --generate` makes
this page from those files. Only the latest run of each is shown: earlier ones are in git's
history of those files.
""",
        *sections,
    )
