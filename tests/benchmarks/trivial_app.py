"""The ingest benchmark's baselines: the web server `clerk-replica serve` runs, answering 200.

Two of them, both run with the same uvicorn.run arguments as `serve` (loop and http left at
"auto", so uvloop and httptools when installed; no log config; proxy headers on), and both
read the whole body, as a real endpoint must before it can verify it:

- `app`: a bare ASGI callable. The floor: what uvicorn alone costs per request.
- `starlette_app`: a Starlette route answering a JSON 200, as our own app is built (Starlette
  routing, its default middleware, a Request and a JSONResponse). The trivial endpoint of the
  web server we actually run; what ingest adds on top of it is our own work.

    python -m tests.benchmarks.trivial_app --port 8001 [--starlette]
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.benchmarks.signed import WEBHOOK_PATH

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


async def accept(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"status": "accepted"})


starlette_app = Starlette(routes=[Route(WEBHOOK_PATH, accept, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--starlette", action="store_true", help="serve starlette_app")
    args = parser.parse_args()
    uvicorn.run(
        f"tests.benchmarks.trivial_app:{'starlette_app' if args.starlette else 'app'}",
        host=args.host,
        port=args.port,
        log_config=None,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
