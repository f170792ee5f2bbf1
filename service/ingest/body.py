"""Read a request body under a size limit and a deadline, never buffering past the limit.

The deadline is kept by one sweeping task per process rather than a timer per request: under
uvloop, `asyncio.timeout` (a timer armed and cancelled per request) costs a large share of
ingest's own CPU per delivery, for a guard that almost never fires. A read past its deadline is
cancelled at the next sweep, so it ends between `seconds` and `seconds` plus one tick.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress

from starlette.types import Receive

from service.ingest.refusals import Refusal


class BodyReader:
    """Reads bodies for one event loop: at most `limit` bytes, within `seconds`."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._tick = min(1.0, max(0.05, seconds / 4))  # a tiny timeout must not spin
        self._reading: dict[asyncio.Task[object], float] = {}  # task -> its deadline
        self._expired: set[asyncio.Task[object]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def read(self, receive: Receive, declared: str | None) -> bytes:
        """The body, refused (413) past the limit or (408) after the deadline: a client
        trickling bytes must not hold a connection and its buffer forever. `declared` is
        the request's content-length header, if it sent one."""
        if declared is not None:
            if not declared.isdigit():
                raise Refusal(400, "bad_headers", "content-length is not a number")
            if int(declared) > self.limit:
                raise Refusal(413, "body_too_large", f"body exceeds {self.limit} bytes")
        loop = self._loop
        if loop is None or self._sweeper is None:
            # Kept: on Python 3.11, get_running_loop() makes a getpid() system call each time.
            loop = self._loop = asyncio.get_running_loop()
            self._sweeper = loop.create_task(self._sweep())
        task = asyncio.current_task(loop)
        assert task is not None
        self._reading[task] = time.monotonic() + self.seconds
        try:
            return await _read(receive, self.limit)
        except asyncio.CancelledError:
            if task not in self._expired:
                raise
            self._expired.discard(task)
            task.uncancel()
            raise Refusal(
                408, "body_timeout", f"body not received within {self.seconds:g}s"
            ) from None
        finally:
            # No await between the read's end and here: the sweeper cannot cancel a task
            # that has stopped reading.
            del self._reading[task]

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._tick)
            now = time.monotonic()
            for task, deadline in list(self._reading.items()):
                if deadline <= now and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
            self._loop = None


async def _read(receive: Receive, limit: int) -> bytes:
    # Straight from the ASGI receive channel: request.stream() wraps each message in an
    # async generator, which costs more than the rest of this function on ingest's hot path.
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refusal(400, "client_disconnected", "the client went away mid-body")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Refusal(413, "body_too_large", f"body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
