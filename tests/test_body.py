"""Reading the body straight from the ASGI channel: chunks, limits and a client that leaves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from starlette.requests import Request

from service.ingest.body import read_limited
from service.ingest.refusals import Refusal


def request(messages: list[dict[str, Any]], headers: list[tuple[bytes, bytes]]) -> Request:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    recv: Callable[[], Awaitable[dict[str, Any]]] = receive
    return Request(scope, recv)


def chunk(body: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


async def test_chunks_are_joined_in_order() -> None:
    got = await read_limited(
        request([chunk(b"ab", True), chunk(b"", True), chunk(b"cd", False)], []), 10, 5
    )
    assert got == b"abcd"


async def test_a_client_that_leaves_mid_body_is_refused() -> None:
    messages = [chunk(b"ab", True), {"type": "http.disconnect"}]
    with pytest.raises(Refusal) as refused:
        await read_limited(request(messages, []), 10, 5)
    assert (refused.value.status, refused.value.code) == (400, "client_disconnected")


async def test_a_streamed_body_past_the_limit_is_refused_at_the_chunk_that_crosses_it() -> None:
    # Without a content-length, the limit is found while reading; the rest is never asked for.
    messages = [chunk(b"x" * 6, True), chunk(b"x" * 6, True)]
    with pytest.raises(Refusal) as refused:
        await read_limited(request(messages, []), 10, 5)
    assert (refused.value.status, refused.value.code) == (413, "body_too_large")


async def test_a_declared_length_past_the_limit_is_refused_before_reading() -> None:
    with pytest.raises(Refusal) as refused:
        await read_limited(request([], [(b"content-length", b"11")]), 10, 5)
    assert refused.value.code == "body_too_large"
