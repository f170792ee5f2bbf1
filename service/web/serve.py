"""`clerk-replica serve`: the web app on HOST:PORT and, when METRICS_PORT is set, its /metrics
on METRICS_HOST:METRICS_PORT instead: two uvicorn servers in this process and its one event
loop, sharing the web app's state.

Invariants: the metrics port is bound before anything starts, so a port that cannot be bound
stops `serve` with an error naming METRICS_PORT and nothing else listening; the servers stop
together (a signal reaches both, and one stopping stops the other); once they have stopped, a
signal that stopped them is raised again, as uvicorn does, so the exit status says it.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from types import FrameType

import uvicorn

from service import process
from service.config import ConfigError, Settings, masked_url
from service.logs import get_logger
from service.web.app import create_app, create_metrics_app

log = get_logger(__name__)

_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # the ones uvicorn handles


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to `_stopped_by_signals`, which stops all of
    serve's servers at once (uvicorn's own handler would stop only the last one started)."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def run(settings: Settings, *, host: str, port: int) -> None:
    """Serve until a signal stops it; Ctrl-C ends it quietly, as `uvicorn.run` does."""
    with suppress(KeyboardInterrupt):
        process.run(serve(settings, host=host, port=port))


async def serve(settings: Settings, *, host: str, port: int) -> None:
    """Run the web app on host:port, and the metrics app on METRICS_PORT when it is set."""
    metrics_socket = None
    if settings.metrics.port is not None:
        if settings.metrics.port == port:
            raise ConfigError(f"METRICS_PORT must differ from the port serve listens on ({port})")
        metrics_socket = _bind_metrics(settings.metrics.host, settings.metrics.port)
    web = create_app(settings)
    log.info(
        "serve.using",
        database=masked_url(settings.database.url),
        redis=masked_url(settings.redis.url),
    )
    config = uvicorn.Config(web, host=host, port=port, log_config=None, proxy_headers=True)
    if metrics_socket is None:
        await uvicorn.Server(config).serve()  # uvicorn's own signal handling
        return
    server = _Server(config)
    metrics = _Server(uvicorn.Config(create_metrics_app(web), log_config=None, lifespan="off"))
    log.info("serve.metrics_port", host=settings.metrics.host, port=settings.metrics.port)
    with _stopped_by_signals([server, metrics]):
        alongside = asyncio.ensure_future(metrics.serve(sockets=[metrics_socket]))
        alongside.add_done_callback(lambda _: setattr(server, "should_exit", True))
        try:
            # In this task, so a web server that cannot start exits as it would alone.
            await server.serve()
        finally:
            metrics.should_exit = True
            await alongside


def _bind_metrics(host: str, port: int) -> socket.socket:
    """A TCP socket bound to METRICS_HOST:METRICS_PORT (an IPv4 or IPv6 address, or a name
    such as localhost), for the metrics server to listen on; ConfigError naming the settings
    when it cannot be bound."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"METRICS_HOST {host!r} is not an address to listen on: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"METRICS_PORT {port} cannot be bound on METRICS_HOST {host}: {exc.strerror or exc}"
        ) from None
    return sock


@contextmanager
def _stopped_by_signals(servers: Sequence[uvicorn.Server]) -> Iterator[None]:
    """SIGINT and SIGTERM stop every server (a second SIGINT forces them), as uvicorn's own
    handler stops one; the signals caught are raised again once the servers have stopped.
    Signals reach the main thread only: elsewhere this handles none."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def handle(sig: int, frame: FrameType | None) -> None:
        caught.append(sig)
        for server in servers:
            server.handle_exit(sig, frame)

    previous = {sig: signal.signal(sig, handle) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for again in reversed(caught):
        signal.raise_signal(again)
