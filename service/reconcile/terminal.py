"""How a reconcile looks on a terminal: a progress bar per kind (plain log lines when not
a terminal) and a summary table at the end."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from service.config import DEFAULT_INSTANCE
from service.logs import get_logger
from service.reconcile.report import PassReport, ProgressCallback, RunReport

log = get_logger(__name__)


@contextmanager
def progress_display() -> Iterator[ProgressCallback]:
    if not sys.stderr.isatty():

        def log_line(report: PassReport, total: int | None) -> None:
            log.info("reconcile.progress", kind=report.kind, listed=report.listed, total=total)

        yield log_line
        return
    bars = Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    tasks: dict[str, TaskID] = {}

    def update(report: PassReport, total: int | None) -> None:
        if report.kind not in tasks:
            tasks[report.kind] = bars.add_task(report.kind, total=total)
        bars.update(tasks[report.kind], completed=report.listed, total=total)

    with bars:
        yield update


def summary_table(report: RunReport) -> Table:
    title = (
        "reconcile (dry run: nothing written)"
        if report.dry_run
        else f"reconcile run {report.run_id}"
    )
    if report.instance != DEFAULT_INSTANCE:
        title += f" of {report.instance}"
    if report.resumed:
        title += " (resumed)"
    title += f": {report.mode} ({report.mode_reason}), {report.requests} requests"
    table = Table(title=title)
    for column in (
        "kind",
        "result",
        "created",
        "updated",
        "unchanged",
        "tombstoned",
        "requests",
        "429s",
        "seconds",
        "listed as",
    ):
        left = column in ("kind", "result", "listed as")
        table.add_column(column, justify="left" if left else "right", no_wrap=True)
    for p in report.passes:
        table.add_row(
            p.kind,
            p.status,
            str(p.created),
            str(p.updated),
            str(p.unchanged),
            str(p.tombstoned),
            str(p.requests),
            str(p.throttled),
            f"{p.seconds:.1f}",
            p.mode,
        )
    return table


def print_summary(report: RunReport) -> None:
    # Never truncate the figures: on a narrow terminal (or none) lay the table out wider.
    width = Console().width if sys.stdout.isatty() else 0
    console = Console(width=max(width, 130))
    console.print(summary_table(report))
    for p in report.passes:
        if p.error:
            console.print(f"{p.kind}: {p.error}", style="red", highlight=False)
        if p.invalid:
            console.print(
                f"{p.kind}: {p.invalid} object(s) did not fit and were skipped", highlight=False
            )
