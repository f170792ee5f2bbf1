"""What the web app's routes share, made in its lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from service.inbox.writer import InboxWriter
from service.queue.client import Enqueuer

if TYPE_CHECKING:
    from service.web.metrics_endpoint import DatabaseGauges


@dataclass
class WebState:
    engine: AsyncEngine
    inbox: InboxWriter
    enqueuer: Enqueuer
    timeout_seconds: float  # bound on each probe's check
    gauges: DatabaseGauges
    metrics_token: bytes | None = None
