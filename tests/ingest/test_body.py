"""Reading the body straight from the ASGI channel: chunks, limits and a client that leaves."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from starlette.types import Message, Receive

from service.ingest.body import BodyReader
from service.ingest.refusals import Refusal


def channel(messages: list[dict[str, Any]]) -> Receive:
    queue = list(messages)

    async def receive() -> Message:
        return queue.pop(0)

    return receive


def chunk(body: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


async def test_chunks_are_joined_in_order() -> None:
    got = await BodyReader(10, 5).read(
        channel([chunk(b"ab", True), chunk(b"", True), chunk(b"cd", False)]), None
    )
    assert got == b"abcd"


async def test_a_client_that_leaves_mid_body_is_refused() -> None:
    messages = [chunk(b"ab", True), {"type": "http.disconnect"}]
    with pytest.raises(Refusal) as refused:
        await BodyReader(10, 5).read(channel(messages), None)
    assert (refused.value.status, refused.value.code) == (400, "client_disconnected")


async def test_a_streamed_body_past_the_limit_is_refused_at_the_chunk_that_crosses_it() -> None:
    # Without a content-length, the limit is found while reading; the rest is never asked for.
    messages = [chunk(b"x" * 6, True), chunk(b"x" * 6, True)]
    with pytest.raises(Refusal) as refused:
        await BodyReader(10, 5).read(channel(messages), None)
    assert (refused.value.status, refused.value.code) == (413, "body_too_large")


async def test_a_declared_length_past_the_limit_is_refused_before_reading() -> None:
    with pytest.raises(Refusal) as refused:
        await BodyReader(10, 5).read(channel([]), "11")
    assert refused.value.code == "body_too_large"


async def test_a_declared_length_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(Refusal) as refused:
        await BodyReader(10, 5).read(channel([]), "1e3")
    assert (refused.value.status, refused.value.code) == (400, "bad_headers")


def stalled(messages: list[dict[str, Any]]) -> Receive:
    """A client that sends `messages`, then nothing more."""
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive


async def test_a_stalled_body_is_refused_after_the_deadline_and_the_next_sweep() -> None:
    reader = BodyReader(100, 0.2)
    started = time.monotonic()
    with pytest.raises(Refusal) as refused:
        await reader.read(stalled([chunk(b"ab", True)]), "10")
    took = time.monotonic() - started
    assert (refused.value.status, refused.value.code) == (408, "body_timeout")
    assert 0.2 <= took < 0.2 + 0.05 + 0.2  # the deadline, one tick (0.05 s), scheduling slack
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]
    await reader.close()


async def test_reads_that_finished_are_never_cancelled_later() -> None:
    reader = BodyReader(100, 0.1)
    for _ in range(3):
        assert await reader.read(channel([chunk(b"ok", False)]), None) == b"ok"
    await asyncio.sleep(0.3)  # several sweeps past every deadline: nothing to cancel
    assert await reader.read(channel([chunk(b"ok", False)]), None) == b"ok"
    await reader.close()


async def test_cancelling_a_request_from_outside_is_not_turned_into_a_408() -> None:
    reader = BodyReader(100, 10)
    task = asyncio.create_task(reader.read(stalled([]), None))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await reader.close()
