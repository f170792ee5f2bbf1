"""Error classification and descriptions (what reaches the inbox and the logs)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.db.engine import create_engine
from service.db.errors import describe, is_transient


async def db_error(engine: AsyncEngine, sql: str, **params: object) -> BaseException:
    async with engine.connect() as conn:
        with pytest.raises(Exception) as caught:
            await conn.execute(text(sql), params)
    return caught.value


async def test_values_never_reach_the_description(pg_db_url: str) -> None:
    engine = create_engine(Settings(), url=pg_db_url)
    try:
        exc = await db_error(engine, "SELECT CAST(:v AS integer)", v="Jane Doe jane@example.org")
    finally:
        await engine.dispose()
    described = describe(exc)
    assert "Jane" not in described and "jane@example.org" not in described
    assert "query argument" in described


@pytest.mark.parametrize(
    ("sql", "transient"),
    [
        ("SET statement_timeout = 1; SELECT pg_sleep(1)", True),  # 57014
        ("SELECT * FROM no_such_table_here", True),  # 42P01: waits for migrate
        ("SELECT 1/0", False),  # 22012: can never succeed
    ],
)
async def test_postgres_classification(pg_db_url: str, sql: str, transient: bool) -> None:
    engine = create_engine(Settings(), url=pg_db_url)
    try:
        async with engine.connect() as conn:
            with pytest.raises(Exception) as caught:
                for statement in sql.split("; "):
                    await conn.execute(text(statement))
    finally:
        await engine.dispose()
    assert is_transient(caught.value) is transient, describe(caught.value)
