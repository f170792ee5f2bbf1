"""python -m docs_gen [--check]: write the generated pages, or fail listing the stale ones."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from docs_gen import benchmarks, commands, metrics, settings, tables, webhooks

ROOT = Path(__file__).resolve().parent.parent
PAGES: dict[str, Callable[[], str]] = {
    "docs/reference/settings.md": settings.render,
    "docs/reference/tables.md": tables.render,
    "docs/reference/commands.md": commands.render,
    "docs/reference/metrics.md": metrics.render,
    "docs/reference/webhooks.md": webhooks.render,
    "docs/benchmarks.md": benchmarks.render,
}


def stale(root: Path = ROOT) -> list[str]:
    """The generated pages whose file differs from what the code says now."""
    return [
        path
        for path, render in PAGES.items()
        if not (root / path).exists() or (root / path).read_text() != render()
    ]


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        outdated = stale()
        if outdated:
            print(
                "stale generated pages (run ./scripts/docs --generate): " + ", ".join(outdated),
                file=sys.stderr,
            )
            return 1
        return 0
    if argv:
        print("usage: python -m docs_gen [--check]", file=sys.stderr)
        return 2
    for path, render in PAGES.items():
        target = ROOT / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render())
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
