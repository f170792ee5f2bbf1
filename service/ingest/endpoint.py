"""POST /webhooks/clerk (and /webhooks/clerk/{name} per named instance): verify -> inbox
(durable) -> acknowledge -> enqueue.

Each endpoint verifies with its own instance's secrets only (each Clerk endpoint has its own
signing secret): another instance's delivery is refused there and nothing of it is stored. The
inbox row names the instance that took it.

A plain ASGI endpoint under Starlette's router and middleware (an unexpected error is still
Starlette's 500): every delivery takes this path, and Starlette's Request, Headers and Response
objects cost it more CPU than the signature check does. Headers are picked from ASGI's raw
list in one pass, answers are constant bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Receive, Scope, Send

from service import jsoncodec
from service.clerk.rows import without_private
from service.db.errors import describe
from service.inbox.store import Delivery, Status
from service.inbox.writer import InboxWriter
from service.ingest.body import BodyReader
from service.ingest.envelope import Envelope, parse_envelope
from service.ingest.refusals import Refusal
from service.ingest.signature import SignatureVerifier, delivery_headers, pick_headers
from service.kinds.registry import is_replicated
from service.logs import get_logger
from service.metrics import DELIVERIES
from service.queue.client import Enqueuer

log = get_logger(__name__)

_ACCEPTED_BODY = b'{"status":"accepted"}'
_DUPLICATE_BODY = b'{"status":"duplicate"}'
_IGNORED_BODY = b'{"status":"ignored"}'
_UNAVAILABLE_BODY = jsoncodec.dumps(
    {"error": "unavailable", "message": "could not store the event; retry later"}
).encode()


@dataclass
class IngestState:
    """What every endpoint shares: the database, the inbox writer, the queue, body reading."""

    engine: AsyncEngine
    inbox: InboxWriter
    enqueuer: Enqueuer
    bodies: BodyReader
    store_private_metadata: bool = True


class _Outcomes:
    """The outcomes an endpoint counts, resolved once: labels() takes a lock and a lookup."""

    def __init__(self, instance: str) -> None:
        self.instance = instance
        self.accepted = DELIVERIES.labels(instance, "accepted", "")
        self.duplicate = DELIVERIES.labels(instance, "duplicate", "")
        self.ignored = DELIVERIES.labels(instance, "ignored", "")
        self.unavailable = DELIVERIES.labels(instance, "unavailable", "database")

    def refused(self, code: str) -> None:
        DELIVERIES.labels(self.instance, "refused", code).inc()


def delivery_for(
    svix_id: str,
    body: bytes,
    envelope: Envelope,
    *,
    store_private_metadata: bool = True,
    instance: str | None = None,
) -> Delivery:
    """What the inbox keeps: the body only for types we replicate (others may carry PII that
    we have no reason to hold), already settled as ignored for the rest; without private
    metadata at any depth when that is not to be kept (the signature was checked on the raw
    bytes before)."""
    replicated = is_replicated(envelope.type)
    text = None
    if replicated:
        text = body.decode() if store_private_metadata else _redacted(body)
    return Delivery(
        svix_id=svix_id,
        event_type=envelope.type,
        body=text,
        event_timestamp_ms=envelope.timestamp_ms,
        object_id=envelope.object_id,
        status=Status.PENDING if replicated else Status.IGNORED,
        instance=instance,
    )


class WebhookEndpoint:
    """One instance's endpoint: the ASGI app Starlette's Route serves (a class instance, so
    Route does not wrap it in a Request/Response handler). The app's lifespan hands it the
    shared state."""

    def __init__(self, instance: str, verifier: SignatureVerifier) -> None:
        self.instance = instance
        self.verifier = verifier
        self.outcomes = _Outcomes(instance)
        self.ingest: IngestState | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.ingest is not None, "the app's lifespan has not started"
        status, body = await _ingest(self, self.ingest, scope, receive)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _ingest(
    endpoint: WebhookEndpoint, ingest: IngestState, scope: Scope, receive: Receive
) -> tuple[int, bytes]:
    """The answer to one delivery: its status and JSON body."""
    outcomes = endpoint.outcomes
    try:
        picked = pick_headers(scope["headers"])
        headers = delivery_headers(picked)
        body = await ingest.bodies.read(receive, picked.get("content-length"))
        endpoint.verifier.verify(body, headers)
        envelope = parse_envelope(body)
    except Refusal as refusal:
        log.info(
            "delivery.refused",
            instance=endpoint.instance,
            code=refusal.code,
            status=refusal.status,
        )
        outcomes.refused(refusal.code)
        answer = {"error": refusal.code, "message": refusal.message}
        return refusal.status, jsoncodec.dumps(answer).encode()

    svix_id = headers["svix-id"]
    delivery = delivery_for(
        svix_id,
        body,
        envelope,
        store_private_metadata=ingest.store_private_metadata,
        instance=endpoint.instance,
    )
    try:
        is_new = await ingest.inbox.record(delivery)
    except Exception as exc:
        # Not durable, so not acknowledged: Svix retries on 5xx.
        log.error("delivery.not_durable", **_ids(delivery), error=describe(exc))
        outcomes.unavailable.inc()
        return 503, _UNAVAILABLE_BODY

    if not is_new:
        log.info("delivery.duplicate", **_ids(delivery))
        outcomes.duplicate.inc()
        return 200, _DUPLICATE_BODY
    if delivery.status is not Status.PENDING:
        log.info("delivery.ignored", **_ids(delivery))
        outcomes.ignored.inc()
        return 200, _IGNORED_BODY
    try:
        await ingest.enqueuer.wake()
    except Exception as exc:
        # The event is durable; the worker's sweep queues it once Redis is back.
        log.warning("delivery.enqueue_failed", **_ids(delivery), error=describe(exc))
    log.info("delivery.accepted", **_ids(delivery))
    outcomes.accepted.inc()
    return 200, _ACCEPTED_BODY


def _redacted(body: bytes) -> str:
    value = jsoncodec.loads(body)  # exact: the stored text keeps every number as sent
    redacted = without_private(value)
    return body.decode() if redacted is value else jsoncodec.dumps(redacted)


def _ids(delivery: Delivery) -> dict[str, str | None]:
    """What a log line about a delivery carries: ids, never the payload."""
    return {
        "instance": delivery.instance,
        "svix_id": delivery.svix_id,
        "event_type": delivery.event_type,
        "object_id": delivery.object_id,
    }
