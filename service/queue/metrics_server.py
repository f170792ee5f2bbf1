"""The worker's /metrics: prometheus-client's WSGI app in a thread, behind METRICS_TOKEN as the
web app's /metrics is (a scrape without `Authorization: Bearer <token>` gets 401)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.multiprocess import MultiProcessCollector

from service.config import Settings
from service.metrics import bearer_matches


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape is not worth a log line


def serve_metrics(settings: Settings) -> ThreadingWSGIServer:
    """Listen on WORKER_METRICS_HOST:WORKER_METRICS_PORT (bound before returning) and answer
    in a daemon thread; the caller may `shutdown()` the server."""
    assert settings.worker.metrics_port is not None
    registry = REGISTRY
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    metrics = make_wsgi_app(registry)
    secret = settings.metrics.token
    token = secret.get_secret_value().encode() if secret is not None else None

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        given = environ.get("HTTP_AUTHORIZATION", "").encode("latin-1")
        if not bearer_matches(given, token):
            start_response("401 Unauthorized", [("Content-Type", "application/json")])
            return [b'{"error": "unauthorized"}']
        answer: Iterable[bytes] = metrics(environ, start_response)
        return answer

    server = make_server(
        settings.worker.metrics_host,
        settings.worker.metrics_port,
        guarded,
        ThreadingWSGIServer,
        handler_class=_Quiet,
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
