"""The ingest benchmark's baseline: the web server `clerk-replica serve` runs, answering 200.

Run with the same uvicorn.run arguments as `serve` (loop and http left at "auto", so uvloop and
httptools when installed; no log config; proxy headers on), so the only difference measured is
the application. It reads the whole body, as a real endpoint must before it can verify it.

    python -m tests.benchmarks.trivial_app --port 8001
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.types import Receive, Scope, Send

BODY = b'{"status":"accepted"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        "tests.benchmarks.trivial_app:app",
        host=args.host,
        port=args.port,
        log_config=None,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
