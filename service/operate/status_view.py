"""`clerk-replica status` for humans: a few small tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_status(report: dict[str, Any]) -> None:
    console = Console()
    known = report.get("instances") or []
    by_instance = report["inbox"].get("by_instance", {})
    if known:
        shown = Table(title="instances")
        for column in ("name", "endpoint", "clerk instance", "pending", "failed", "last reconcile"):
            shown.add_column(column, justify="right" if column in ("pending", "failed") else "left")
        for each in known:
            counts = by_instance.get(each["name"], {})
            run = each["last_reconcile"]
            shown.add_row(
                each["name"],
                each["endpoint"],
                each["instance_id"] or "not yet identified",
                str(counts.get("pending", 0)),
                str(counts.get("failed", 0)),
                (f"run {run['id']} {run['status']}" if run else "never")
                + f"; last complete: {each.get('last_complete_reconcile_at') or 'never'}",
            )
        console.print(shown)
    replica = Table(title="replica")
    for column in ("table", "live", "tombstoned"):
        replica.add_column(column, justify="left" if column == "table" else "right")
    for name, counts in report["replica"].items():
        replica.add_row(name, str(counts["live"]), str(counts["tombstoned"]))
    console.print(replica)

    inbox = report["inbox"]
    age = inbox["oldest_pending_age_seconds"]
    queue = report["queue"]
    depth = queue["depth"] if queue["depth"] is not None else f"unknown ({queue['error']})"
    console.print(
        f"inbox: {inbox['backlog']} pending"
        + (f" (oldest {age:.0f}s)" if age is not None else "")
        + ", "
        + ", ".join(f"{n} {s}" for s, n in inbox["by_status"].items() if s != "pending")
        + f"; queue depth: {depth}",
        highlight=False,
    )
    console.print(_workers_line(report.get("workers")), highlight=False)
    kept = report.get("retention")
    if kept is not None:
        console.print(
            f"retention: bodies of applied events for {kept['body_retention_hours']:g} h "
            f"({kept['applied_bodies_kept']} kept, {kept['bodies_due']} due), settled rows "
            f"for {kept['row_retention_days']:g} days ({kept['rows_due']} due); failed and "
            f"discarded rows for {kept.get('failed_retention_days', 0):g} days "
            f"({kept.get('failed_rows_due', 0)} due)",
            highlight=False,
        )
    erasing = report.get("erasure")
    if erasing is not None:
        console.print(
            "erasure: deleted users' personal data is "
            + ("erased" if erasing["erase_deleted_users"] else "kept (ERASE_DELETED_USERS=false)")
            + f"; {erasing['deleted_users_to_erase']} deleted users still hold some",
            highlight=False,
        )
    if inbox["failed"]:
        failed = Table(title="failed events (newest first)")
        for column in ("instance", "svix_id", "type", "object", "received", "error"):
            failed.add_column(column)
        for f in inbox["failed"]:
            failed.add_row(
                f.get("instance", ""),
                f["svix_id"],
                f["event_type"],
                f["object_id"] or "",
                f["received_at"],
                f["error"],
            )
        console.print(failed)

    run = report["last_reconcile"]
    if run is None:
        console.print("last reconcile: never", highlight=False)
    else:
        totals = ", ".join(f"{k} {v}" for k, v in run["totals"].items())
        console.print(
            f"last reconcile: run {run['id']} ({run['trigger']}, {run['mode']}) "
            f"{run['status']}, started {run['started_at']}: {totals}"
            + (f"; error: {run['error']}" if run["error"] else ""),
            highlight=False,
        )
        console.print(
            f"last full reconcile completed: {run['last_full_completed_at'] or 'never'}",
            highlight=False,
        )


def _workers_line(workers: dict[str, Any] | None) -> str:
    if workers is None:
        return "workers: unknown"
    if workers["error"] is not None:
        return f"workers: unknown (Redis: {workers['error']})"
    age = workers["last_heartbeat_age_seconds"]
    if workers["alive"]:
        return f"workers: {workers['alive']} alive (last heartbeat {age:.0f}s ago)"
    if age is None:
        return "workers: NONE alive (no heartbeat for a day): start `clerk-replica worker`"
    return f"workers: NONE alive (last heartbeat {age:.0f}s ago): start `clerk-replica worker`"
