"""The app as declared: its routes, and what its lifespan says at start-up."""

from __future__ import annotations

from typing import Any

import structlog

from service.config import Settings
from tests.support.signing import PREVIOUS_SECRET


async def test_a_previous_signing_secret_is_warned_about_while_it_is_set(
    client_for: Any, settings: Settings
) -> None:
    assert settings.clerk_webhook_signing_secret_previous is not None
    with structlog.testing.capture_logs() as logged:
        await client_for(settings)
    (line,) = [e for e in logged if e["event"] == "config.previous_signing_secret_set"]
    assert line["log_level"] == "warning"
    assert line["variable"] == "CLERK_WEBHOOK_SIGNING_SECRET_PREVIOUS"
    assert PREVIOUS_SECRET not in repr(logged)


async def test_no_warning_without_a_previous_secret(client_for: Any, settings: Settings) -> None:
    only_current = settings.model_copy(update={"clerk_webhook_signing_secret_previous": None})
    with structlog.testing.capture_logs() as logged:
        client = await client_for(only_current)
    assert [e for e in logged if e["event"] == "config.previous_signing_secret_set"] == []
    assert (await client.get("/healthz")).status_code == 200
