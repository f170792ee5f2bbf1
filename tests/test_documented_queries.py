"""Every ```sql block of README.md and docs/getting-started.md runs against the demo world
(`send-test-event --demo`, delivered through the endpoint and applied as the worker does) on
PostgreSQL and SQLite, and each of its queries returns at least one row.

A block whose first line is `-- PostgreSQL only` runs on PostgreSQL alone (the clerk_fdw views,
`SET search_path`); a statement that returns no result set (SET) is run but not counted.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.db.dialect import dialect_of
from tests.support.demo_world import ClientFor, apply_all, deliver_demo

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ["README.md", "docs/getting-started.md"]
SQL_BLOCK = re.compile(r"^```sql[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
POSTGRES_ONLY = "-- postgresql only"


def sql_blocks(document: str) -> list[str]:
    return SQL_BLOCK.findall((ROOT / document).read_text())


def statements(block: str) -> list[str]:
    """The block's statements, comment lines left out (no block puts `;` inside a string)."""
    code = "\n".join(line for line in block.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in code.split(";") if s.strip()]


def test_the_blocks_are_found() -> None:
    assert len(sql_blocks("docs/getting-started.md")) >= 6
    block = "-- a comment\nSELECT 1;\n\nSELECT 'a'\nFROM t;\n"
    assert statements(block) == ["SELECT 1", "SELECT 'a'\nFROM t"]
    markdown = f"text\n```sql\n{block}```\n```sh\nls\n```\n"
    assert SQL_BLOCK.findall(markdown) == [block]


@pytest.mark.parametrize("document", DOCUMENTS)
async def test_every_documented_query_returns_rows_from_the_demo_world(
    document: str, engine: AsyncEngine, settings: Settings, client_for: ClientFor
) -> None:
    blocks = sql_blocks(document)
    assert blocks, f"{document} has no ```sql block"
    client = await client_for(settings)
    assert {status for status, _ in await deliver_demo(client)} == {200}
    await apply_all(engine)
    async with engine.connect() as conn:
        postgres = dialect_of(conn).schemas
    empty: dict[str, str] = {}
    for number, block in enumerate(blocks, start=1):
        if block.lower().startswith(POSTGRES_ONLY) and not postgres:
            continue
        # One connection per block, as a reader runs it (a SET lasts to the block's end), and
        # rolled back afterwards; each statement in a savepoint, so one failure names itself.
        async with engine.connect() as conn:
            for statement in statements(block):
                where = f"{document} block {number}: {statement.splitlines()[0]}"
                savepoint = await conn.begin_nested()
                try:
                    result = await conn.execute(text(statement))
                    rows = result.fetchall() if result.returns_rows else None
                except Exception as exc:
                    empty[where] = f"fails: {str(getattr(exc, 'orig', exc)).splitlines()[0][:160]}"
                    await savepoint.rollback()
                    continue
                await savepoint.commit()
                if rows == []:
                    empty[where] = "no rows"
            await conn.rollback()
    assert not empty, "\n".join(f"{where} -> {why}" for where, why in empty.items())
