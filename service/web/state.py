"""What the web app's routes share, made in its lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from prometheus_client.metrics_core import Metric
from sqlalchemy.ext.asyncio import AsyncEngine

from service.inbox.writer import InboxWriter
from service.queue.client import Enqueuer


class Gauges(Protocol):
    """The gauges /metrics serves from the database (service/web/metrics_endpoint.py)."""

    async def families(self) -> list[Metric]: ...


@dataclass
class WebState:
    engine: AsyncEngine
    inbox: InboxWriter
    enqueuer: Enqueuer
    timeout_seconds: float  # bound on each probe's check
    gauges: Gauges
    metrics_token: bytes | None = None
