"""The ingest benchmark's baselines: the web server `clerk-replica serve` runs, answering 200.

Two of them, both run as `serve` runs (the same uvicorn.run arguments: loop and http left at
"auto", so uvloop and httptools when installed; no log config; proxy headers on; and the
collector tuned as service/process.py tunes it), and both read the whole body, as a real
endpoint must before it can verify it:

- `app`: a bare ASGI callable. The floor: what uvicorn alone costs per request.
- `starlette_app`: a Starlette app whose route serves an ASGI endpoint that reads the body and
  answers a constant JSON 200, built as our own app is (Starlette's default middleware and
  router in front of a plain ASGI endpoint, see service/ingest/endpoint.py). The trivial
  endpoint of the web server we actually run; what ingest adds on top of it is our own work.

    python -m tests.benchmarks.trivial_app --port 8001 [--starlette]
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from service import process
from tests.benchmarks.signed import WEBHOOK_PATH

BODY = b'{"status":"accepted"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def answer(receive: Receive, send: Send) -> None:
    """Read the whole body, answer 200."""
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await answer(receive, send)


class Accept:
    """An ASGI endpoint (a class instance, as ours is: Route serves it as it is)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await answer(receive, send)


starlette_app = Starlette(routes=[Route(WEBHOOK_PATH, Accept(), methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--starlette", action="store_true", help="serve starlette_app")
    args = parser.parse_args()
    process.tune_gc()
    uvicorn.run(
        f"tests.benchmarks.trivial_app:{'starlette_app' if args.starlette else 'app'}",
        host=args.host,
        port=args.port,
        log_config=None,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
