"""Code-structure checks over service/, read with `ast` (nothing in service/ is imported).

A part is a subpackage of service (service/apply, service/config, ...) or a root module
(service/jsoncodec.py, service/cli.py, ...). The checks: no import cycle between parts, nor
between the modules of one part (type-only imports count); imports point down the layers of
LAYERS, which ranks every part; third-party packages such as arq stay in their one part;
PostgreSQL and SQLite differences only in the db part; no measured figures in docstrings or
comments; every module with logic has its test module (tests/<part>/test_<module>.py). Module
size is no rule: a module is one concept, however big.

Everything a check depends on is one of the constants below, so a new layout means editing
data, not code. `python -m tests.test_structure` prints the part graph, the module graph
inside each part, their cycles and what every other check flags.
"""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path

# Rank of every part: a part may import only parts of strictly lower rank (or itself). Parts
# listed here that do not exist yet are ignored; a part that exists but is not listed fails
# test_every_part_is_ranked, so a new part gets its place on purpose.
LAYERS: dict[str, int] = {
    "config": 0,
    "jsoncodec": 0,
    "process": 0,
    "logs": 1,
    "metrics": 1,
    "db": 2,
    "clerk": 2,
    "replica": 3,
    "inbox": 3,
    "kinds": 4,
    "feed": 5,
    "apply": 6,
    "reconcile": 6,
    "queue": 7,
    "ingest": 8,
    "operate": 8,
    "web": 9,
    "dev": 9,
    "schema": 9,
    "cli": 10,
    "__main__": 11,
}

SERVICE_ROOT = Path(__file__).resolve().parents[1] / "service"

# Third-party top-level package -> the one part allowed to import it.
PACKAGE_HOMES: dict[str, str] = {"arq": "queue"}

# The part where every PostgreSQL/SQLite difference lives.
DIALECT_HOME = "db"
# Modules outside DIALECT_HOME allowed to tell the dialects apart: "service/x.py" -> why.
DIALECT_ALLOWED: dict[str, str] = {
    "service/feed/dialects.py": "the change feed's triggers and sources, per database: the feed "
    "sits above db, so its SQL (naming the feed's tables) cannot live there",
    "service/schema/target.py": "names the databases a generated schema is written for",
}
DIALECT_MODULES: tuple[str, ...] = ("sqlalchemy.dialects.postgresql", "sqlalchemy.dialects.sqlite")
# A string constant naming a dialect or a driver: "postgresql", "sqlite+aiosqlite", ...
DIALECT_STRING = re.compile(r"(?:postgres|postgresql|sqlite)(?:\+\w+)?")
# Dialect-specific keyword arguments such as Index(..., postgresql_where=...).
DIALECT_KWARG_PREFIXES: tuple[str, ...] = ("postgresql_", "sqlite_")

TESTS_ROOT = Path(__file__).resolve().parent
# Modules with logic but no test module of their own: "service/x.py" -> why, naming the tests
# that cover it. A module leaves this list when it gets its tests/<part>/test_<module>.py.
TESTLESS_ALLOWED: dict[str, str] = {
    "service/db/postgresql.py": "tests/db/test_dialect.py (every method, on PostgreSQL) and "
    "tests/operate/test_readonly.py (its reserved words)",
    "service/db/sqlite.py": "tests/db/test_dialect.py (every method, on SQLite)",
    "service/dev/ports.py": "free_port and wait_for_port serve the tests themselves",
    "service/dev/runtime.py": "tests/dev/test_stack.py (the state file of a running stack)",
    "service/dev/secret.py": "tests/dev/test_stack.py (the dev secret persists, env wins)",
    "service/dev/send.py": "tests/dev/test_stack.py (send-test-event against the dev stack)",
    "service/ingest/envelope.py": "tests/ingest/test_endpoint.py (bodies that are not envelopes, "
    "huge timestamps)",
    "service/ingest/refusals.py": "a data class; tests/ingest/test_body.py and test_signature.py",
    "service/kinds/columns.py": "column helpers; tests/operate/test_migrate.py",
    "service/operate/actions.py": "tests/queue/test_worker.py (replay) and tests/test_cli.py",
    "service/operate/status_view.py": "tests/dev/test_stack.py and tests/system/test_secrets.py "
    "(the status command's output)",
    "service/reconcile/modes.py": "tests/reconcile/test_run.py (the kinds, parents first)",
    "service/reconcile/report.py": "tests/reconcile/test_run.py and test_console.py",
    "service/reconcile/run.py": "tests/queue/test_worker.py (the nightly job) and "
    "tests/reconcile/test_console.py",
}

# Exact phrases that look like measurements but are facts of configuration or of Clerk's
# documentation (matched with any run of whitespace, line breaks included, between words).
MEASUREMENT_ALLOWED: tuple[str, ...] = (
    "1000/10 s",  # Clerk's documented production rate limit
    "100/10 s",  # Clerk's documented development rate limit
    "per 10 s",  # the window of that limit
    "10 s window",
)
_NUM = r"(?<![\w.])\d+(?:[.,]\d+)*"
_COUNT_NOUNS = (
    r"users|rows|events|deliveries|requests|req|objects|organizations|orgs|memberships|"
    r"messages|webhooks|calls|connections|pages"
)
# Benchmark-style figures: a number with a unit of time, rate, size or ratio.
MEASUREMENT = re.compile(
    "|".join(
        (
            _NUM + r"\s?(?:ns|µs|μs|us|ms)\b",  # 0.8 ms, 70 µs, 5 us
            _NUM + r"\s(?:s|sec|secs)\b",  # 12 s (a space: "429s" and "1990s" are plurals)
            _NUM + r"\s?%",  # 10-20%
            _NUM + "(?:x|\u00d7)(?!\\w)|" + _NUM + "\\s\u00d7",  # 2x, and with a times sign
            _NUM + r"[kKM]?\s?(?:[A-Za-z]+)?/s\b",  # 3,300 objects/s, 8.5k req/s
            _NUM + r"[kKM]?\s+(?:\w+\s+)?(?:per|a)\s+second\b",  # 900 users per second
            _NUM + r"[kKM]\s+(?:" + _COUNT_NOUNS + r")\b",  # 20k users
            _NUM + r"\s?(?:[KMGT]i?B|kB)\b",  # 150 MB, 80 MiB
            r"\b(?:\d+(?:\.\d+)?|two|three|four|five|six|seven|eight|nine|ten|a hundred)"
            r"\s+times\s+(?:faster|slower|quicker|more|fewer|less|as)\b",  # ten times faster
        )
    ),
    re.IGNORECASE,
)


# --- reading the tree ---------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    """One import statement (or `"service.x:attr"` string), resolved to absolute names."""

    line: int
    module: str  # "service.apply.rows", "arq.connections", "sqlalchemy.dialects.postgresql"
    names: tuple[str, ...]  # the names of a from-import; () for `import x`


@dataclass(frozen=True)
class Module:
    rel: str  # "service/apply/rows.py"
    name: str  # "service.apply.rows"
    part: str | None  # "apply"; None for the package's own __init__.py
    is_package: bool
    source: str
    tree: ast.Module

    def line(self, lineno: int) -> str:
        lines = self.source.splitlines()
        return lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""


def _python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


@cache
def load_modules(root: Path) -> tuple[Module, ...]:
    """Every module under the package directory `root`, parsed."""
    modules = []
    for path in _python_files(root):
        rel_parts = path.relative_to(root).with_suffix("").parts
        is_package = rel_parts[-1] == "__init__"
        dotted = (root.name, *rel_parts[:-1]) if is_package else (root.name, *rel_parts)
        source = path.read_text(encoding="utf-8")
        modules.append(
            Module(
                rel=path.relative_to(root.parent).as_posix(),
                name=".".join(dotted),
                part=dotted[1] if len(dotted) > 1 else None,
                is_package=is_package,
                source=source,
                tree=ast.parse(source, filename=str(path)),
            )
        )
    return tuple(modules)


def find_parts(root: Path) -> dict[str, str]:
    """Part -> its path: every subpackage and every root module but __init__.py."""
    parts = {}
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and entry.name != "__pycache__" and _python_files(entry):
            parts[entry.name] = f"{root.name}/{entry.name}/"
        elif entry.suffix == ".py" and entry.name != "__init__.py":
            parts[entry.stem] = f"{root.name}/{entry.name}"
    return parts


def imports_of(module: Module) -> Iterator[Import]:
    """Every import anywhere in the module (functions and TYPE_CHECKING blocks included),
    relative ones resolved, plus string references such as "service.web.app:app_factory"."""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    top = module.name.split(".")[0]
    reference = re.compile(rf"{re.escape(top)}(?:\.\w+)+(?::[\w.]+)?")
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(node.lineno, alias.name, ())
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names)
            if node.level == 0:
                yield Import(node.lineno, node.module or "", names)
                continue
            base = package.split(".")
            if node.level > 1:
                base = base[: -(node.level - 1)]
            if not base:
                continue  # beyond the top package: not ours to resolve
            yield Import(
                node.lineno, ".".join([*base, *([node.module] if node.module else [])]), names
            )
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and reference.fullmatch(node.value)
        ):
            yield Import(node.lineno, node.value.partition(":")[0], ())


def target_parts(imp: Import, top: str, parts: Iterable[str]) -> set[str]:
    """The parts of package `top` an import reaches."""
    if imp.module == top:  # from service import config, apply
        return {name for name in imp.names if name in set(parts)}
    if imp.module.startswith(top + "."):
        return {imp.module.split(".")[1]}
    return set()


def build_part_graph(root: Path) -> dict[str, dict[str, list[str]]]:
    """Part -> {part it imports -> where: "service/x.py:12: <the line>"}; every part is a key.

    The package's own __init__.py belongs to no part; `from service import x` reaches part x."""
    parts = find_parts(root)
    graph: dict[str, dict[str, list[str]]] = {part: {} for part in parts}
    for module in load_modules(root):
        if module.part is None:
            continue
        for imp in imports_of(module):
            for target in target_parts(imp, root.name, parts) - {module.part}:
                graph[module.part].setdefault(target, []).append(
                    f"{module.rel}:{imp.line}: {module.line(imp.line)}"
                )
    return graph


def _resolve(imp: Import, known: set[str]) -> set[str]:
    """The modules of `known` an import reaches: `from a.b import c` reaches a.b.c when it is a
    module, else a.b (or the nearest enclosing module known)."""
    reached = {f"{imp.module}.{name}" for name in imp.names} & known
    if imp.names and len(reached) == len(imp.names):
        return reached
    module = imp.module
    while module and module not in known:
        module = module.rpartition(".")[0]
    return reached | ({module} if module else set())


def build_module_graph(root: Path) -> dict[str, dict[str, dict[str, list[str]]]]:
    """Part -> {module -> {module of the same part it imports -> where}}; every module of a
    part is a key (a package's __init__.py is its part's module named for the package)."""
    modules = [m for m in load_modules(root) if m.part is not None]
    known = {m.name for m in modules}
    part_of = {m.name: m.part for m in modules}
    graph: dict[str, dict[str, dict[str, list[str]]]] = {}
    for module in modules:
        assert module.part is not None
        edges = graph.setdefault(module.part, {}).setdefault(module.name, {})
        for imp in imports_of(module):
            for target in _resolve(imp, known) - {module.name}:
                if part_of[target] == module.part:
                    edges.setdefault(target, []).append(
                        f"{module.rel}:{imp.line}: {module.line(imp.line)}"
                    )
    return graph


def _successors(graph: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    successors = {node: sorted(set(targets) - {node}) for node, targets in graph.items()}
    for targets in list(successors.values()):
        for target in targets:
            successors.setdefault(target, [])
    return successors


def tangles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan) of two or more nodes, each sorted."""
    successors = _successors(graph)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in successors[node]:
            if succ not in index:
                connect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(successors):
        if node not in index:
            connect(node)
    return sorted(component for component in components if len(component) > 1)


def shortest_cycle(graph: Mapping[str, Iterable[str]], start: str) -> list[str] | None:
    """The shortest path [start, ..., start] (breadth first), or None."""
    successors = _successors(graph)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier and start not in came_from:
        following = []
        for node in frontier:
            for succ in successors.get(node, []):
                if succ not in came_from:
                    came_from[succ] = node
                    following.append(succ)
        frontier = following
    if start not in came_from:
        return None
    path = [start]
    node = came_from[start]
    while node != start:
        path.append(node)
        node = came_from[node]
    return [*path, start][::-1]


def find_cycles(graph: Mapping[str, Iterable[str]], *, every_part: bool = False) -> list[list[str]]:
    """One shortest cycle [a, b, ..., a] per tangle, from its first part; with every_part, the
    shortest cycle through each part of each tangle (each cycle once)."""
    cycles: list[list[str]] = []
    seen: set[frozenset[tuple[str, str]]] = set()
    for component in tangles(graph):
        for start in component if every_part else component[:1]:
            cycle = shortest_cycle(graph, start)
            if cycle is None:
                continue
            edges = frozenset(pairwise(cycle))
            if edges not in seen:
                seen.add(edges)
                cycles.append(cycle)
    return cycles


# --- the checks: each returns its violations, one line each -------------------------------


def cycle_violations(root: Path) -> list[str]:
    graph = build_part_graph(root)
    lines = [f"tangle of {len(c)} parts: {', '.join(c)}" for c in tangles(graph)]
    for cycle in find_cycles(graph):
        lines.append("cycle: " + " -> ".join(cycle))
        for source, target in pairwise(cycle):
            lines.extend(f"    {source} -> {target}: {where}" for where in graph[source][target])
    return lines


def module_cycle_violations(root: Path) -> list[str]:
    """Import cycles between the modules of one part (type-only imports included)."""
    lines = []
    for part, graph in sorted(build_module_graph(root).items()):
        for component in tangles(graph):
            lines.append(f"{part}: tangle of {len(component)} modules: {', '.join(component)}")
        for cycle in find_cycles(graph):
            lines.append(f"{part}: cycle: " + " -> ".join(cycle))
            for source, target in pairwise(cycle):
                lines.extend(f"    {where}" for where in graph[source][target])
    return lines


def unranked_parts(root: Path, layers: Mapping[str, int]) -> list[str]:
    return [f"{part} ({path})" for part, path in find_parts(root).items() if part not in layers]


def layer_violations(root: Path, layers: Mapping[str, int]) -> list[str]:
    lines: list[str] = []
    for source, targets in build_part_graph(root).items():
        for target, wheres in sorted(targets.items()):
            if source in layers and target in layers and layers[target] >= layers[source]:
                lines.extend(
                    f"{source} ({layers[source]}) -> {target} ({layers[target]}): {where}"
                    for where in wheres
                )
    return lines


def package_home_violations(root: Path, homes: Mapping[str, str]) -> list[str]:
    lines = []
    for module in load_modules(root):
        for imp in imports_of(module):
            home = homes.get(imp.module.split(".")[0])
            if home is not None and module.part != home:
                lines.append(f"{module.rel}:{imp.line}: {module.line(imp.line)}  (only in {home})")
    return lines


def _dialect_uses(module: Module) -> Iterator[tuple[int, str]]:
    for imp in imports_of(module):
        full = [imp.module] if not imp.names else [f"{imp.module}.{name}" for name in imp.names]
        if any(
            name == home or name.startswith(home + ".") for name in full for home in DIALECT_MODULES
        ):
            yield imp.line, f"imports from {imp.module}"
    for node in ast.walk(module.tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "name"
            and (
                (isinstance(node.value, ast.Name) and node.value.id == "dialect")
                or (isinstance(node.value, ast.Attribute) and node.value.attr == "dialect")
            )
        ):
            yield node.lineno, "dialect.name"
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and DIALECT_STRING.fullmatch(node.value)
        ):
            yield node.lineno, repr(node.value)
        elif isinstance(node, ast.keyword) and (node.arg or "").startswith(DIALECT_KWARG_PREFIXES):
            yield node.lineno, f"{node.arg}="


def dialect_violations(root: Path, home: str, allowed: Mapping[str, str]) -> list[str]:
    lines = []
    for module in load_modules(root):
        if module.part == home or module.rel in allowed:
            continue
        for lineno, what in sorted(set(_dialect_uses(module))):
            lines.append(f"{module.rel}:{lineno}: {what}: {module.line(lineno)}")
    return lines


def _prose(module: Module) -> Iterator[tuple[int, str]]:
    """(first line, text) of every docstring and every block of consecutive comment lines."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                yield first.value.lineno, first.value.value
    block: list[str] = []
    start = last = 0
    for token in tokenize.generate_tokens(io.StringIO(module.source).readline):
        if token.type != tokenize.COMMENT:
            continue
        if block and token.start[0] != last + 1:
            yield start, "\n".join(block)
            block = []
        if not block:
            start = token.start[0]
        block.append(token.string.lstrip("#"))
        last = token.start[0]
    if block:
        yield start, "\n".join(block)


def find_measurements(text: str, allowed: Iterable[str]) -> list[tuple[int, str]]:
    """(line offset, figure) of every measurement in text, allowed phrases blanked out first."""
    for phrase in allowed:
        words = r"\s+".join(re.escape(word) for word in phrase.split())
        pattern = rf"(?<![\w.]){words}(?!\w)"
        text = re.sub(pattern, lambda m: re.sub(r"\S", " ", m.group()), text)
    return [
        (text.count("\n", 0, match.start()), " ".join(match.group().split()))
        for match in MEASUREMENT.finditer(text)
    ]


def measurement_violations(root: Path, allowed: Iterable[str]) -> list[str]:
    lines = []
    for module in load_modules(root):
        for start, text in _prose(module):
            for offset, figure in find_measurements(text, allowed):
                lineno = start + offset
                lines.append(f"{module.rel}:{lineno}: {figure!r}: {module.line(lineno)}")
    return sorted(lines, key=lambda line: (line.split(":")[0], int(line.split(":")[1])))


def _is_protocol(node: ast.ClassDef) -> bool:
    return any(
        (isinstance(base, ast.Name) and base.id == "Protocol")
        or (isinstance(base, ast.Attribute) and base.attr == "Protocol")
        for base in node.bases
    )


def has_logic(module: Module) -> bool:
    """A module-level function, or a class with a method of its own (a Protocol's methods
    declare, they do nothing)."""
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    return any(
        isinstance(node, functions)
        or (
            isinstance(node, ast.ClassDef)
            and not _is_protocol(node)
            and any(isinstance(n, functions) for n in node.body)
        )
        for node in module.tree.body
    )


def expected_test_module(module: Module, tests_root: Path) -> Path:
    """service/apply/batch.py -> tests/apply/test_batch.py; service/cli.py -> tests/test_cli.py
    (a package's __init__.py -> test___init__.py in its mirrored folder)."""
    *folders, name = Path(module.rel).parts[1:]
    return tests_root.joinpath(*folders, f"test_{Path(name).stem}.py")


def missing_test_modules(root: Path, tests_root: Path, allowed: Mapping[str, str]) -> list[str]:
    lines = []
    for module in load_modules(root):
        expected = expected_test_module(module, tests_root)
        if has_logic(module) and module.rel not in allowed and not expected.exists():
            lines.append(f"{module.rel}: {expected.relative_to(tests_root.parent).as_posix()}")
    return lines


# --- the tests over service/ --------------------------------------------------------------


def _report(header: str, violations: list[str]) -> str:
    return header + "\n  " + "\n  ".join(violations)


def test_no_import_cycle_between_parts() -> None:
    violations = cycle_violations(SERVICE_ROOT)
    assert not violations, _report("Import cycles between parts of service/:", violations)


def test_no_import_cycle_inside_a_part() -> None:
    violations = module_cycle_violations(SERVICE_ROOT)
    assert not violations, _report("Import cycles between modules of one part:", violations)


def test_every_part_is_ranked() -> None:
    violations = unranked_parts(SERVICE_ROOT, LAYERS)
    assert not violations, _report(
        "Parts of service/ missing from LAYERS (rank each one on purpose):", violations
    )


def test_imports_point_down_the_layers() -> None:
    violations = layer_violations(SERVICE_ROOT, LAYERS)
    assert not violations, _report(
        "Imports to a part of equal or higher rank in LAYERS (source (rank) -> target (rank)):",
        violations,
    )


def test_third_party_packages_stay_in_their_part() -> None:
    violations = package_home_violations(SERVICE_ROOT, PACKAGE_HOMES)
    assert not violations, _report(f"Imports outside their part {PACKAGE_HOMES}:", violations)


def test_dialect_differences_live_in_db() -> None:
    violations = dialect_violations(SERVICE_ROOT, DIALECT_HOME, DIALECT_ALLOWED)
    assert not violations, _report(
        f"PostgreSQL/SQLite differences outside the {DIALECT_HOME} part:", violations
    )


def test_no_measured_figures_in_docstrings_or_comments() -> None:
    violations = measurement_violations(SERVICE_ROOT, MEASUREMENT_ALLOWED)
    assert not violations, _report(
        "Measured figures in docstrings/comments (they belong in the benchmarks' JSON results):",
        violations,
    )


def test_every_module_with_logic_has_a_test_module() -> None:
    violations = missing_test_modules(SERVICE_ROOT, TESTS_ROOT, TESTLESS_ALLOWED)
    assert not violations, _report(
        "Modules with logic but no test module (write it, or say in TESTLESS_ALLOWED why not):",
        violations,
    )


# --- the checkers themselves, on synthetic trees ------------------------------------------


def _write_tree(root: Path, files: Mapping[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "pkg"


_SYNTHETIC_LAYERS = {"config": 0, "db": 1, "queue": 2, "apply": 3, "cli": 4}

_COMPLIANT = {
    "__init__.py": '"""A package."""\n',
    "config.py": '"""Settings: rate limit 1000/10 s, 5 minutes tolerance."""\nLIMIT = 1000\n',
    "db/__init__.py": "from pkg.db.engine import connect\n\n__all__ = ['connect']\n",
    "db/engine.py": (
        "from sqlalchemy import JSON\n"
        "from sqlalchemy.dialects.postgresql import JSONB, insert\n"
        "from pkg import config\n"
        'JSONValue = JSON().with_variant(JSONB(), "postgresql")\n'
        "def connect(engine):\n"
        '    return insert if engine.dialect.name == "postgresql" else None\n'
    ),
    "queue/__init__.py": "import arq\nfrom .. import db\n",
    "apply/__init__.py": "from .rows import write\n",
    "apply/rows.py": (
        "from typing import TYPE_CHECKING\n"
        "from ..db import connect\n"
        "if TYPE_CHECKING:\n"
        "    from pkg.queue import Thing\n"
        "def write() -> None:\n"
        "    # Retries on 5xx and 429s; 0x1F is a mask.\n"
        "    from pkg import config\n"
    ),
    "cli.py": ('"""The command line."""\nimport pkg.apply.rows\nAPP = "pkg.apply.rows:write"\n'),
}

_VIOLATING = {
    **_COMPLIANT,
    "db/engine.py": "from pkg.apply import rows\n",  # db -> apply: up, and a cycle
    "status.py": "import pkg.config\n",  # unranked
    "apply/rows.py": (
        "from arq.connections import ArqRedis\n"
        "from sqlalchemy.dialects.sqlite import insert as sqlite_insert\n"
        "def write(conn) -> None:\n"
        '    """Took 0.8 ms per row, 10-20% more at 20k users."""\n'
        '    if conn.dialect.name == "sqlite":\n'
        "        from pkg.db import engine  # 3,300 objects/s; 150 MB peak\n"
    ),
}


def test_checkers_pass_on_a_compliant_tree(tmp_path: Path) -> None:
    root = _write_tree(tmp_path, _COMPLIANT)
    graph = build_part_graph(root)
    assert {part: sorted(targets) for part, targets in graph.items()} == {
        "apply": ["config", "db", "queue"],
        "cli": ["apply"],
        "config": [],
        "db": ["config"],
        "queue": ["db"],
    }
    assert graph["apply"]["config"] == ["pkg/apply/rows.py:7: from pkg import config"]
    assert graph["cli"]["apply"] == [
        "pkg/cli.py:2: import pkg.apply.rows",
        'pkg/cli.py:3: APP = "pkg.apply.rows:write"',
    ]
    assert cycle_violations(root) == []
    assert module_cycle_violations(root) == []
    assert unranked_parts(root, _SYNTHETIC_LAYERS) == []
    assert layer_violations(root, _SYNTHETIC_LAYERS) == []
    assert package_home_violations(root, {"arq": "queue"}) == []
    assert dialect_violations(root, "db", {}) == []
    assert measurement_violations(root, MEASUREMENT_ALLOWED) == []


def test_checkers_catch_violations(tmp_path: Path) -> None:
    root = _write_tree(tmp_path, _VIOLATING)
    assert cycle_violations(root)[:2] == [
        "tangle of 2 parts: apply, db",
        "cycle: apply -> db -> apply",
    ]
    assert unranked_parts(root, _SYNTHETIC_LAYERS) == ["status (pkg/status.py)"]
    assert layer_violations(root, _SYNTHETIC_LAYERS) == [
        "db (1) -> apply (3): pkg/db/engine.py:1: from pkg.apply import rows"
    ]
    assert package_home_violations(root, {"arq": "queue"}) == [
        "pkg/apply/rows.py:1: from arq.connections import ArqRedis  (only in queue)"
    ]
    assert [line.split(": ")[1] for line in dialect_violations(root, "db", {})] == [
        "imports from sqlalchemy.dialects.sqlite",
        "'sqlite'",
        "dialect.name",
    ]
    assert dialect_violations(root, "db", {"pkg/apply/rows.py": "test"}) == []
    assert [line.split(": ")[1] for line in measurement_violations(root, MEASUREMENT_ALLOWED)] == [
        "'0.8 ms'",
        "'20%'",
        "'20k users'",
        "'3,300 objects/s'",
        "'150 MB'",
    ]


def test_missing_test_modules(tmp_path: Path) -> None:
    root = _write_tree(
        tmp_path,
        {
            "__init__.py": '"""A package."""\n',
            "__main__.py": "from pkg.cli import main\nmain()\n",
            "cli.py": "def main() -> None: ...\n",
            "config.py": "LIMIT = 1000\n",
            "db/__init__.py": "",
            "db/engine.py": "class Engine:\n    def connect(self) -> None: ...\n",
            "db/types.py": "class Kind:\n    name: str\n",
            "apply/rows.py": "async def write() -> None: ...\n",
            "apply/plan.py": "def plan() -> None: ...\n",
            "apply/shape.py": (
                "from typing import Protocol\n"
                "class Shape(Protocol):\n    def area(self) -> float: ...\n"
            ),
        },
    )
    tests = tmp_path / "tests"
    for rel in ("test_cli.py", "db/test_engine.py", "test_rows.py"):
        (tests / rel).parent.mkdir(parents=True, exist_ok=True)
        (tests / rel).write_text("", encoding="utf-8")
    assert missing_test_modules(root, tests, {"pkg/apply/plan.py": "covered elsewhere"}) == [
        "pkg/apply/rows.py: tests/apply/test_rows.py"
    ]


def test_measurement_pattern() -> None:
    flagged = [
        "0.8 ms",
        "70 µs",
        "5 us",
        "12 s",
        "10-20%",
        "2x",
        "3,300 objects/s",
        "8.5k req/s",
        "20k users",
        "150 MB",
        "80 MiB",
        "ten times faster",
        "0.9k\n    users/s",
    ]
    kept = [
        "1000/10 s live",
        "Clerk allows 1000 per 10 s",
        "in any 10 s window",
        "5 minutes tolerance",
        "429s and 5xx",
        "0x1F",
        "per_10s",
        "the 1990s",
        "500 parameters every call",
        "port 8000",
        "2026-11-01",
    ]
    assert [text for text in flagged if not find_measurements(text, MEASUREMENT_ALLOWED)] == []
    assert [text for text in kept if find_measurements(text, MEASUREMENT_ALLOWED)] == []


def test_module_cycles_inside_a_part(tmp_path: Path) -> None:
    root = _write_tree(
        tmp_path,
        {
            "__init__.py": "",
            "config.py": "LIMIT = 1\n",
            "apply/__init__.py": "from pkg.apply.rows import write\n",
            "apply/rows.py": (
                "from typing import TYPE_CHECKING\n"
                "from pkg import config\n"
                "if TYPE_CHECKING:\n"
                "    from pkg.apply.plan import Plan\n"
            ),
            "apply/plan.py": "from pkg.apply import rows, steps\n",
            "apply/steps.py": "from . import config_view\n",
            "apply/config_view.py": "from pkg.config import LIMIT\n",
        },
    )
    graph = build_module_graph(root)
    assert {name: sorted(targets) for name, targets in graph["apply"].items()} == {
        "pkg.apply": ["pkg.apply.rows"],
        "pkg.apply.config_view": [],
        "pkg.apply.plan": ["pkg.apply.rows", "pkg.apply.steps"],
        "pkg.apply.rows": ["pkg.apply.plan"],
        "pkg.apply.steps": ["pkg.apply.config_view"],
    }
    assert graph["config"] == {"pkg.config": {}}
    assert module_cycle_violations(root) == [
        "apply: tangle of 2 modules: pkg.apply.plan, pkg.apply.rows",
        "apply: cycle: pkg.apply.plan -> pkg.apply.rows -> pkg.apply.plan",
        "    pkg/apply/plan.py:1: from pkg.apply import rows, steps",
        "    pkg/apply/rows.py:4: from pkg.apply.plan import Plan",
    ]
    (root / "apply" / "rows.py").write_text("from pkg import config\n", encoding="utf-8")
    load_modules.cache_clear()
    assert module_cycle_violations(root) == []


def test_find_cycles() -> None:
    assert find_cycles({"a": ["b"], "b": ["c"], "c": []}) == []
    assert find_cycles({"a": ["b"], "b": ["c"], "c": ["a", "b"], "d": ["d", "a"]}) == [
        ["a", "b", "c", "a"]
    ]
    assert find_cycles({"a": ["b"], "b": ["a"], "x": ["y"], "y": ["x"]}) == [
        ["a", "b", "a"],
        ["x", "y", "x"],
    ]
    tangled = {"a": ["b"], "b": ["a", "c"], "c": ["b"], "d": ["a"]}
    assert tangles(tangled) == [["a", "b", "c"]]
    assert find_cycles(tangled) == [["a", "b", "a"]]
    assert find_cycles(tangled, every_part=True) == [["a", "b", "a"], ["c", "b", "c"]]


# --- python -m tests.test_structure ---------------------------------------------------------


def main(root: Path = SERVICE_ROOT) -> int:
    graph = build_part_graph(root)
    print(f"Part graph of {root.name}/ (part [rank] -> parts it imports):")
    for part in sorted(graph, key=lambda p: (LAYERS.get(p, 99), p)):
        rank = LAYERS.get(part)
        print(f"  {part} [{'unranked' if rank is None else rank}] -> {sorted(graph[part])}")
    print(f"\nModule graph inside each part of {root.name}/ (module -> modules it imports):")
    for part, modules in sorted(build_module_graph(root).items()):
        if len(modules) < 2:
            continue
        print(f"  {part}:")
        prefix = f"{root.name}.{part}."
        for name, targets in sorted(modules.items()):
            short = sorted(t.removeprefix(prefix) for t in targets)
            print(f"    {name.removeprefix(prefix)} -> {short}")
    components = tangles(graph)
    print("\nCycles:" if components else "\nCycles: none")
    for component in components:
        print(f"  tangle of {len(component)} parts: {', '.join(component)}")
    for cycle in find_cycles(graph, every_part=True):
        print("  " + " -> ".join(cycle))
    checks = {
        "Import cycles inside a part": module_cycle_violations(root),
        "Unranked parts": unranked_parts(root, LAYERS),
        "Layer violations": layer_violations(root, LAYERS),
        f"Imports outside their part {PACKAGE_HOMES}": package_home_violations(root, PACKAGE_HOMES),
        f"Dialect differences outside {DIALECT_HOME}": dialect_violations(
            root, DIALECT_HOME, DIALECT_ALLOWED
        ),
        "Measured figures in docstrings/comments": measurement_violations(
            root, MEASUREMENT_ALLOWED
        ),
        "Modules with logic but no test module": missing_test_modules(
            root, TESTS_ROOT, TESTLESS_ALLOWED
        ),
    }
    for title, violations in checks.items():
        print(f"\n{title}: {len(violations) or 'none'}")
        for line in violations:
            print("  " + line)
    return 1 if components or any(checks.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
