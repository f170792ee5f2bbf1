"""The inbox table and the states an event moves through."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, and_, text

from service.db.types import UTCDateTime, metadata, partial_index


class Status(StrEnum):
    PENDING = "pending"  # durable, not yet applied: the sweep re-enqueues these
    APPLIED = "applied"
    IGNORED = "ignored"  # a type we do not replicate; acknowledged, never retried
    FAILED = "failed"  # can never apply as it is; kept with its error for operators
    DISCARDED = "discarded"  # a failed event an operator gave up on (`discard`); body forgotten


inbox = Table(
    "clerk_replica_inbox",
    metadata,
    Column("svix_id", String(255), primary_key=True),
    Column("event_type", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    # The verified body exactly as received; NULL for ignored types (no reason to keep PII).
    Column("body", Text),
    # Envelope `timestamp`, normalised to epoch ms; a deletion's tombstone time.
    Column("event_timestamp_ms", BigInteger),
    Column("object_id", String(255)),
    Column("received_at", UTCDateTime, nullable=False),
    Column("applied_at", UTCDateTime),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    # After a transient failure: batch claims leave the event alone until then (backoff).
    Column("retry_after", UTCDateTime),
    # The configured instance whose endpoint took the delivery (`default` for the plain
    # endpoint; NULL for rows from before several instances).
    Column("instance", String(64)),
)
Index("ix_clerk_replica_inbox_status_received_at", inbox.c.status, inbox.c.received_at)
# Retention (service/inbox/retention.py) finds what to forget without scanning the inbox: bodies
# still kept by applied events, and settled rows, each by the time they were settled.
partial_index(
    "ix_clerk_replica_inbox_kept_bodies",
    inbox.c.applied_at,
    where=and_(inbox.c.status == Status.APPLIED.value, inbox.c.body.is_not(None)),
)
partial_index(
    "ix_clerk_replica_inbox_settled",
    inbox.c.applied_at,
    where=inbox.c.status.in_([Status.APPLIED.value, Status.IGNORED.value]),
)
# Erasure (service/kinds/erasure.py) finds the events about a deleted person that still hold a
# body; bodies are forgotten after retention, so this index stays the size of the recent inbox.
partial_index(
    "ix_clerk_replica_inbox_bodies_by_object",
    inbox.c.object_id,
    where=inbox.c.body.is_not(None),
)
