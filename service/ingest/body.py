"""Read a request body under a size limit without ever buffering more than the limit."""

from __future__ import annotations

import asyncio

from starlette.requests import ClientDisconnect, Request

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
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Refusal(413, "body_too_large", f"body exceeds {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise Refusal(400, "client_disconnected", "the client went away mid-body") from None
    return b"".join(chunks)
