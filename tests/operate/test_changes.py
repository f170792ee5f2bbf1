"""`changes`: the feed printed from a seq, and followed as it grows (woken by NOTIFY on
PostgreSQL, polling on SQLite)."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from service.operate.changes import line, print_changes
from tests.support import tables as t


async def add(engine: AsyncEngine, *ids: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(t.users), [{"id": i} for i in ids])


async def test_prints_from_a_seq_and_follows(engine: AsyncEngine) -> None:
    await add(engine, "user_c0", "user_c1")
    seen: list[dict[str, Any]] = []
    last = await print_changes(engine, seen.append, since=0, follow=False)
    assert [c["object_id"] for c in seen] == ["user_c0", "user_c1"]
    assert last == seen[-1]["seq"]
    later: list[dict[str, Any]] = []
    stop = asyncio.Event()
    following = asyncio.create_task(
        print_changes(engine, later.append, since=seen[0]["seq"], follow=True, stop=stop)
    )
    await asyncio.sleep(0.2)
    await add(engine, "user_c2")
    for _ in range(100):
        if len(later) == 2:
            break
        await asyncio.sleep(0.05)
    stop.set()
    assert await asyncio.wait_for(following, timeout=5) == later[-1]["seq"]
    assert [c["object_id"] for c in later] == ["user_c1", "user_c2"]
    text = line(later[-1])
    assert text.split("\t")[2:5] == ["upsert", "clerk_users", "user_c2"]
