"""What the web app's routes share, made in its lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from service.queue.client import Enqueuer


@dataclass
class WebState:
    engine: AsyncEngine
    enqueuer: Enqueuer
    timeout_seconds: float  # bound on each probe's check
    metrics_token: str | None = None
