"""STORE_PRIVATE_METADATA=false means nowhere: no `private_metadata`, at any depth, in any
table, the inbox included (the signature is checked on the raw bytes, the redacted body is what
is stored). A full dump of the database is searched for the marker."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_batch
from service.clerk.rows import RowOptions
from service.config import Settings
from service.db.types import metadata
from tests.support import clerk_payloads as cp
from tests.support.settings import make_settings
from tests.support.signing import signed

MARKER = "marker-in-private-metadata-3c9f"


def with_private(data: dict[str, Any]) -> dict[str, Any]:
    """The object with private metadata on itself and on every object nested in it."""

    def mark(value: Any) -> Any:
        if isinstance(value, dict):
            marked = {k: mark(v) for k, v in value.items()}
            if "id" in marked and "object" in marked:
                marked["private_metadata"] = {"note": MARKER, "n": 12345678901234567890123}
            return marked
        if isinstance(value, list):
            return [mark(v) for v in value]
        return value

    marked = mark(data)
    assert isinstance(marked, dict)
    return marked


async def dump(engine: AsyncEngine) -> str:
    """Every row of every table, as text."""
    parts: list[str] = []
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            parts.extend(repr(tuple(row)) for row in await conn.execute(select(table)))
    return "\n".join(parts)


async def deliver_all(client: Any, engine: AsyncEngine, options: RowOptions) -> None:
    events = [
        cp.envelope("user.created", with_private(cp.user())),
        cp.envelope("organization.created", with_private(cp.organization())),
        cp.envelope("organizationMembership.created", with_private(cp.membership())),
        cp.envelope("organizationInvitation.created", with_private(cp.invitation())),
    ]
    for event in events:
        body, headers = signed(event)
        assert MARKER.encode() in body
        response = await client.post("/webhooks/clerk", content=body, headers=headers)
        assert response.status_code == 200, response.text
    result = await apply_batch(engine, options, 100)
    assert dict(result.outcomes) == {"applied": len(events)}


async def test_off_means_nowhere(
    client_for: Any, db_url: str, redis_url: str, engine: AsyncEngine
) -> None:
    settings = make_settings(db_url, redis_url, store_private_metadata=False)
    client = await client_for(settings)
    await deliver_all(client, engine, RowOptions(store_private_metadata=False))
    everything = await dump(engine)
    assert "jane.doe@acme.example" in everything  # the dump does see the replica's contents
    assert MARKER not in everything
    assert "private_metadata': {" not in everything and '"private_metadata"' not in everything


async def test_on_keeps_it_where_clerk_sent_it(
    client_for: Any, settings: Settings, engine: AsyncEngine
) -> None:
    client = await client_for(settings)
    await deliver_all(client, engine, RowOptions())
    assert MARKER in await dump(engine)
