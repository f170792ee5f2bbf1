"""Settings for a test: the given database and Redis, the test secrets, a queue prefix of its
own (so tests sharing one Redis never see each other's jobs), and no sweep grace."""

from __future__ import annotations

from uuid import uuid4

from service.config import Settings
from tests.support.signing import PREVIOUS_SECRET, SECRET


def make_settings(database_url: str, redis_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "clerk_webhook_signing_secret": SECRET,
        "clerk_webhook_signing_secret_previous": PREVIOUS_SECRET,
        "queue_prefix": f"test-{uuid4().hex[:12]}",
        "sweep_grace_seconds": 0,
        "log_format": "console",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
