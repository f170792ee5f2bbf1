"""Small server-rendered SVG charts: a series of numbers drawn as bars or a line in a fixed
viewBox that scales to the page's width. No script, no external asset; every number written
into the SVG is formatted here, so nothing from the database reaches it as markup."""

from __future__ import annotations

from collections.abc import Sequence

WIDTH, HEIGHT = 600, 120
_TOP = 14  # room for the maximum's label


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def bars(values: Sequence[float], *, label: str, unit: str) -> str:
    """One bar per value, scaled to the largest; `label` titles the chart."""
    top = max(values, default=0.0)
    step = WIDTH / max(1, len(values))
    shapes = []
    for i, value in enumerate(values):
        if value <= 0 or top <= 0:
            continue
        h = (HEIGHT - _TOP) * value / top
        x, y, w = _fmt(i * step), _fmt(HEIGHT - h), _fmt(max(step - 0.5, 0.5))
        shapes.append(f'<rect x="{x}" y="{y}" width="{w}" height="{_fmt(h)}"/>')
    return _frame(label, f"max {_fmt(top)} {unit}", "".join(shapes), "bars")


def line(values: Sequence[float | None], *, label: str, unit: str) -> str:
    """A polyline through the values (a gap where a value is None), scaled to the largest."""
    known = [v for v in values if v is not None]
    top = max(known, default=0.0)
    step = WIDTH / max(1, len(values) - 1)
    runs: list[list[str]] = [[]]
    for i, value in enumerate(values):
        if value is None:
            runs.append([])
            continue
        y = HEIGHT - ((HEIGHT - _TOP) * value / top if top > 0 else 0)
        runs[-1].append(f"{_fmt(i * step)},{_fmt(y)}")
    shapes = "".join(
        f'<polyline points="{" ".join(points)}"/>'
        if len(points) > 1
        else f'<circle cx="{points[0].split(",")[0]}" cy="{points[0].split(",")[1]}" r="1.5"/>'
        for points in runs
        if points
    )
    return _frame(label, f"max {_fmt(top)} {unit}", shapes, "line")


def _frame(label: str, note: str, shapes: str, kind: str) -> str:
    title = f"{label} ({note})"
    return (
        f'<svg class="chart {kind}" viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none" '
        f'role="img" aria-label="{_escape(title)}"><title>{_escape(title)}</title>'
        f'<line class="axis" x1="0" y1="{HEIGHT}" x2="{WIDTH}" y2="{HEIGHT}"/>{shapes}</svg>'
    )


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
