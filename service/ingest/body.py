"""Read a request body under a size limit without ever buffering more than the limit."""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from service.ingest.refusals import Refusal


async def read_limited(request: Request, limit: int, seconds: float) -> bytes:
    """The body, refused (413) past `limit` bytes or (408) after `seconds`: a client
    trickling bytes must not hold a connection and its buffer forever."""
    try:
        async with asyncio.timeout(seconds):
            return await _read(request, limit)
    except TimeoutError:
        raise Refusal(408, "body_timeout", f"body not received within {seconds:g}s") from None


async def _read(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Refusal(400, "bad_headers", "content-length is not a number")
        if int(declared) > limit:
            raise Refusal(413, "body_too_large", f"body exceeds {limit} bytes")
    # Straight from the ASGI receive channel: request.stream() wraps each message in an
    # async generator, which costs more than the rest of this function on ingest's hot path.
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise Refusal(400, "client_disconnected", "the client went away mid-body")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Refusal(413, "body_too_large", f"body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
