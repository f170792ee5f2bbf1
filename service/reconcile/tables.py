"""Bookkeeping for reconcile: runs (what happened), progress (where to resume), each pass's
segments (the parts of a list walked side by side, each resumable), seen ids (for deletion
detection without holding them in memory), the instances listed, and lease locks."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Integer, String, Table, Text

from service.db.types import JSONValue, UTCDateTime, metadata
from service.inbox.instances import instances as instances


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


runs = Table(
    "clerk_replica_reconcile_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trigger", String(16), nullable=False),  # cli | cron
    Column("status", String(16), nullable=False),
    Column("resources", JSONValue, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("summary", JSONValue),
    Column("error", Text),
    Column("instance", String(64)),  # the configured instance listed (NULL: the default)
    Column("mode", String(16)),  # full | incremental (NULL: before modes, a full run)
)

progress = Table(
    "clerk_replica_reconcile_progress",
    metadata,
    Column(
        "run_id",
        Integer,
        ForeignKey(runs.c.id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("resource", String(32), primary_key=True),
    # Objects created after the pass started may be missing from it: never tombstone those.
    Column("pass_started_at", UTCDateTime, nullable=False),
    Column("cursor", Text),  # the last id seen (users' starting_after)
    Column("offset", Integer, nullable=False, default=0),
    Column("listed", Boolean, nullable=False, default=False),
    Column("done", Boolean, nullable=False, default=False),
    Column("counts", JSONValue, nullable=False),
)

segments = Table(
    "clerk_replica_reconcile_segments",
    metadata,
    Column("run_id", Integer, ForeignKey(runs.c.id, ondelete="CASCADE"), primary_key=True),
    Column("resource", String(32), primary_key=True),
    Column("segment", Integer, primary_key=True),
    # What the segment covers: an offset window [start, end), or created_at bounds (ms).
    Column("start_offset", Integer, nullable=False, default=0),
    Column("end_offset", Integer),
    Column("created_after_ms", BigInteger),
    Column("created_before_ms", BigInteger),
    # Where its walk stands.
    Column("offset", Integer, nullable=False, default=0),
    Column("cursor", Text),
    Column("done", Boolean, nullable=False, default=False),
)

# What each configured name stands for in Clerk (service/inbox/instances.py).

seen = Table(
    "clerk_replica_reconcile_seen",
    metadata,
    Column("run_id", Integer, ForeignKey(runs.c.id, ondelete="CASCADE"), primary_key=True),
    Column("resource", String(32), primary_key=True),
    Column("object_id", Text, primary_key=True),
)

locks = Table(
    "clerk_replica_locks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)
