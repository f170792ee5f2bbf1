"""POST /webhooks/clerk: verify -> inbox (durable) -> acknowledge -> enqueue."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.apply.errors import describe
from service.apply.handlers import is_replicated
from service.inbox.store import Delivery
from service.inbox.table import Status
from service.inbox.writer import InboxWriter
from service.ingest.body import read_limited
from service.ingest.envelope import Envelope, parse_envelope
from service.ingest.refusals import Refusal
from service.ingest.signature import SignatureVerifier, delivery_headers
from service.logs import get_logger
from service.metrics import DELIVERIES
from service.queue.client import Enqueuer

log = get_logger(__name__)


@dataclass
class IngestState:
    engine: AsyncEngine
    inbox: InboxWriter
    verifier: SignatureVerifier
    enqueuer: Enqueuer
    max_body_bytes: int
    read_timeout_seconds: float = 10.0
    timeout_seconds: float = 5.0
    metrics_token: str | None = None


def _answer(body: bytes) -> Response:
    """A 200 with a constant JSON body, without encoding it per request."""
    return Response(body, media_type="application/json")


def delivery_for(svix_id: str, body: bytes, envelope: Envelope) -> Delivery:
    """What the inbox keeps: the body only for types we replicate (others may carry PII that
    we have no reason to hold), already settled as ignored for the rest."""
    replicated = is_replicated(envelope.type)
    return Delivery(
        svix_id=svix_id,
        event_type=envelope.type,
        body=body.decode() if replicated else None,
        event_timestamp_ms=envelope.timestamp_ms,
        object_id=envelope.object_id,
        status=Status.PENDING if replicated else Status.IGNORED,
    )


async def receive_clerk_webhook(request: Request) -> Response:
    ingest: IngestState = request.app.state.ingest
    try:
        headers = delivery_headers(request.headers)
        body = await read_limited(request, ingest.max_body_bytes, ingest.read_timeout_seconds)
        ingest.verifier.verify(body, headers)
        envelope = parse_envelope(body)
    except Refusal as refusal:
        log.info("delivery.refused", code=refusal.code, status=refusal.status)
        DELIVERIES.labels("refused", refusal.code).inc()
        return JSONResponse(
            {"error": refusal.code, "message": refusal.message}, status_code=refusal.status
        )

    svix_id = headers["svix-id"]
    delivery = delivery_for(svix_id, body, envelope)
    replicated = delivery.status is Status.PENDING
    ids = {"svix_id": svix_id, "event_type": envelope.type, "object_id": envelope.object_id}
    try:
        is_new = await ingest.inbox.record(delivery)
    except Exception as exc:
        # Not durable, so not acknowledged: Svix retries on 5xx.
        log.error("delivery.not_durable", **ids, error=describe(exc))
        DELIVERIES.labels("unavailable", "database").inc()
        return JSONResponse(
            {"error": "unavailable", "message": "could not store the event; retry later"},
            status_code=503,
        )

    if not is_new:
        log.info("delivery.duplicate", **ids)
        DELIVERIES.labels("duplicate", "").inc()
        return _answer(b'{"status":"duplicate"}')
    if not replicated:
        log.info("delivery.ignored", **ids)
        DELIVERIES.labels("ignored", "").inc()
        return _answer(b'{"status":"ignored"}')
    try:
        await ingest.enqueuer.wake()
    except Exception as exc:
        # The event is durable; the worker's sweep queues it once Redis is back.
        log.warning("delivery.enqueue_failed", **ids, error=describe(exc))
    log.info("delivery.accepted", **ids)
    DELIVERIES.labels("accepted", "").inc()
    return _answer(b'{"status":"accepted"}')
