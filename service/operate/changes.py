"""`clerk-replica changes`: print the change feed from a `seq` on, and with `follow` keep
printing as it grows (a `tail -f` for the replica). Woken by NOTIFY on PostgreSQL, and reading
at least every `poll_seconds` anyway (SQLite has no NOTIFY; a missed one costs a delay only)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from service.feed import read
from service.feed.dialects import listen_changes

_PAGE = 1000


async def print_changes(
    engine: AsyncEngine,
    emit: Callable[[dict[str, Any]], None],
    *,
    since: int,
    follow: bool,
    poll_seconds: float = 1.0,
    stop: asyncio.Event | None = None,
) -> int:
    """Emit the changes after `since` in order; with `follow`, keep going until `stop` is set.
    Returns the last seq emitted (or `since`)."""
    stop = stop or asyncio.Event()
    woken = asyncio.Event()
    async with engine.connect() as listener:
        if follow:
            await listen_changes(listener, woken.set)
        while True:
            async with engine.connect() as conn:
                rows = await read.after(conn, since, _PAGE)
            for row in rows:
                emit(row)
                since = int(row["seq"])
            if len(rows) == _PAGE:
                continue
            if not follow or stop.is_set():
                return since
            woken.clear()
            waits = [asyncio.ensure_future(e.wait()) for e in (woken, stop)]
            await asyncio.wait(waits, timeout=poll_seconds, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                task.cancel()


def line(row: dict[str, Any]) -> str:
    """One change as a line of text."""
    source = row.get("svix_id") or row.get("run_id") or "-"
    return (
        f"{row['seq']}\t{row['changed_at'].isoformat()}\t{row['op']}\t{row['table_name']}\t"
        f"{row['object_id']}\t{row.get('instance_id') or '-'}\t{source}"
    )
