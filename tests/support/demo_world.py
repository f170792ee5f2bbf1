"""The demo world (`send-test-event --demo`) delivered through the real endpoint, signed, and
applied as the worker applies it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_batch
from service.clerk.rows import RowOptions
from service.config import Settings
from service.dev.demo import demo_events
from service.dev.send import demo_svix_id
from tests.support.signing import signed_headers

ClientFor = Callable[[Settings], Awaitable[httpx.AsyncClient]]


async def deliver_demo(client: httpx.AsyncClient) -> list[tuple[int, Any]]:
    """POST every demo event to /webhooks/clerk under its --demo svix-id; (status, answer)."""
    answers: list[tuple[int, Any]] = []
    for event in demo_events():
        body = json.dumps(event).encode()
        headers = signed_headers(body, svix_id=demo_svix_id(event))
        response = await client.post("/webhooks/clerk", content=body, headers=headers)
        answers.append((response.status_code, response.json()))
    return answers


async def apply_all(engine: AsyncEngine) -> dict[str, int]:
    """Apply whatever the inbox holds, batch after batch, as the worker does."""
    outcomes: dict[str, int] = {}
    while True:
        result = await apply_batch(engine, RowOptions(), 100)
        if not result.outcomes:
            return outcomes
        for outcome, count in dict(result.outcomes).items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
