"""/metrics reports by type and outcome, optionally behind a token, and never carries ids,
emails or names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.config import Settings
from tests.support import clerk_payloads as cp
from tests.support.replica_helpers import deliver
from tests.support.settings import make_settings
from tests.support.signing import SECRET, signed

ClientFor = Callable[[Settings], Any]


async def test_metrics_count_by_outcome_without_personal_data(
    client_for: ClientFor, settings: Settings, engine: Any
) -> None:
    client = await client_for(settings)
    body, headers = signed(cp.envelope("user.created", cp.user()))
    assert (await client.post("/webhooks/clerk", content=body, headers=headers)).status_code == 200
    headers["svix-signature"] = "v1,AAAA"
    assert (await client.post("/webhooks/clerk", content=body, headers=headers)).status_code == 401
    await deliver(engine, cp.envelope("user.updated", cp.user(updated_at=cp.T0 + 1)))

    text = (await client.get("/metrics")).text
    assert 'clerk_replica_deliveries_total{outcome="refused",reason="bad_signature"}' in text
    assert 'clerk_replica_events_total{event_type="user.updated",outcome="applied"}' in text
    assert (
        "clerk_replica_apply_seconds_bucket" in text and "clerk_replica_event_lag_seconds" in text
    )
    assert 'clerk_replica_inbox_events{status="pending"} 1.0' in text
    assert "clerk_replica_inbox_oldest_pending_age_seconds" in text
    for private in ("example@example.org", "Example", cp.user()["id"], SECRET):
        assert private not in text


async def test_metrics_token(client_for: ClientFor, db_url: str, redis_url: str) -> None:
    client = await client_for(make_settings(db_url, redis_url, metrics_token="scrape-me"))
    assert (await client.get("/metrics")).status_code == 401
    wrong = await client.get("/metrics", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = await client.get("/metrics", headers={"authorization": "Bearer scrape-me"})
    assert right.status_code == 200 and "clerk_replica_inbox_events" in right.text
