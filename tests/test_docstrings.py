"""Docstrings say a module's (class's, function's) job and its invariant in a few lines: none is
over MAX_LINES lines. The why goes into docs/explanation/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 12
CHECKED = ("service", "docs_gen", "migrations")


def long_docstrings(root: Path, parts: tuple[str, ...] = CHECKED) -> list[str]:
    """`path:name: N lines` for every docstring over MAX_LINES lines under `parts` of `root`."""
    found: list[str] = []
    for part in parts:
        for path in sorted((root / part).rglob("*.py")):
            tree = ast.parse(path.read_text())
            nodes: list[ast.AST] = [tree, *ast.walk(tree)]
            for node in nodes:
                if not isinstance(
                    node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
                ):
                    continue
                doc = ast.get_docstring(node, clean=False)
                if doc is not None and len(doc.splitlines()) > MAX_LINES:
                    name = getattr(node, "name", "<module>")
                    where = path.relative_to(root)
                    found.append(f"{where}:{name}: {len(doc.splitlines())} lines")
    return sorted(set(found))


def test_no_docstring_over_twelve_lines() -> None:
    found = long_docstrings(ROOT)
    assert found == [], "Docstrings over 12 lines (move the why into docs/explanation/):\n" + (
        "\n".join(found)
    )


def test_a_long_docstring_is_found(tmp_path: Path) -> None:
    (tmp_path / "service").mkdir()
    body = "\n".join(f"line {n}" for n in range(MAX_LINES + 1))
    (tmp_path / "service" / "long.py").write_text(
        f'"""Short."""\n\n\ndef f() -> None:\n    """{body}"""\n'
    )
    assert long_docstrings(tmp_path, ("service",)) == ["service/long.py:f: 13 lines"]
