"""The areas of the settings, one model each (database, Redis, worker, ingest, inbox,
reconcile, serve, metrics, console, logging, development): every field reads its own flat
variable, PREFIX_<FIELD> unless it names one. Tuning knobs are marked ADVANCED."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, SecretStr

from service.config.values import ConfigError

# A tuning knob: its default suits nearly every install (the reference lists it apart).
ADVANCED: dict[str, Any] = {"advanced": True}


def area(prefix: str, title: str) -> ConfigDict:
    """An area model's config: its fields read PREFIX_<FIELD> unless a field names its variable."""
    return ConfigDict(
        title=title,
        alias_generator=AliasGenerator(validation_alias=lambda name: prefix + name),
        populate_by_name=True,
    )


class DatabaseSettings(BaseModel):
    model_config = area("db_", "Database")

    url: str = Field(
        default="sqlite:///./clerk-replica.db",
        validation_alias="database_url",
        description="Replica database: postgres://, postgresql://, postgresql+asyncpg:// "
        "or sqlite:///path.",
    )
    replica_schema: str = Field(
        default="public",
        validation_alias="replica_schema",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema of the replica tables, the inbox and the bookkeeping.",
    )
    fdw_schema: str = Field(
        default="clerk_fdw",
        validation_alias="clerk_fdw_schema",
        pattern=r"^([a-z_][a-z0-9_]{0,62})?$",
        description="PostgreSQL schema for the clerk_fdw-compatible views; empty: none.",
    )
    store_private_metadata: bool = Field(
        default=True,
        validation_alias="store_private_metadata",
        description="Keep users' and organizations' private_metadata in the replica; false stores"
        " NULL.",
    )
    erase_deleted_users: bool = Field(
        default=True,
        validation_alias="erase_deleted_users",
        description="Erase a user's personal data when Clerk deletes the user.",
    )
    change_feed: bool = Field(
        default=True,
        validation_alias="change_feed",
        description="Append every change of a replica row to clerk_replica_changes (and NOTIFY "
        "on PostgreSQL); read by migrations (the triggers) and by the writers.",
    )
    changes_retention_days: float = Field(
        default=7,
        gt=0,
        validation_alias="changes_retention_days",
        description="Days the change feed keeps a change before pruning it.",
    )
    pool_size: int = Field(
        default=10,
        ge=1,
        json_schema_extra=ADVANCED,
        description="Connections each process keeps open to PostgreSQL.",
    )
    connect_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        json_schema_extra=ADVANCED,
        description="How long to wait for a database connection (and SQLite's busy lock).",
    )


class RedisSettings(BaseModel):
    model_config = area("redis_", "Redis and the queue")

    url: str = Field(default="redis://localhost:6379/0", description="arq's Redis.")
    queue_prefix: str = Field(
        default="clerk-replica",
        validation_alias="queue_prefix",
        description="Namespaces queue and job keys in a shared Redis.",
    )
    timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        json_schema_extra=ADVANCED,
        description="How long to wait for Redis to connect or answer.",
    )


class WorkerSettings(BaseModel):
    model_config = area("worker_", "Worker")

    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="If set, the worker serves /metrics there."
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Where the worker's /metrics listens."
    )
    concurrency: int = Field(
        default=10, ge=1, json_schema_extra=ADVANCED, description="Jobs one worker runs at once."
    )
    max_tries: int = Field(
        default=8,
        ge=1,
        json_schema_extra=ADVANCED,
        description="Tries arq gives one queued job before dropping it (the sweep wakes its "
        "events again).",
    )
    max_event_attempts: int = Field(
        default=20,
        ge=1,
        json_schema_extra=ADVANCED,
        description="Transient failures before an event is marked failed.",
    )
    poll_delay_seconds: float = Field(
        default=0.01,
        gt=0,
        json_schema_extra=ADVANCED,
        description="How often an idle worker polls Redis for due jobs.",
    )
    batch_size: int = Field(
        default=250,
        ge=1,
        le=2000,
        json_schema_extra=ADVANCED,
        description="Most events one apply transaction takes.",
    )
    batch_streams: int = Field(
        default=2,
        ge=1,
        le=16,
        json_schema_extra=ADVANCED,
        description="Batches one apply job runs at once (PostgreSQL).",
    )
    wake_window_ms: int = Field(
        default=20,
        ge=1,
        le=5000,
        json_schema_extra=ADVANCED,
        description="Deliveries within one window share one queued apply job.",
    )
    job_timeout_seconds: int = Field(
        default=60,
        ge=1,
        json_schema_extra=ADVANCED,
        description="A job running longer is cancelled; also how long a job abandoned by a killed"
        " worker waits before another worker takes it.",
    )
    heartbeat_seconds: float = Field(
        default=15.0,
        gt=0,
        json_schema_extra=ADVANCED,
        description="How often each worker records in Redis that it is alive; status and "
        "/metrics count a worker alive while its last beat is within three periods.",
    )


class IngestSettings(BaseModel):
    model_config = area("ingest_", "Webhook ingest")

    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        validation_alias="webhook_max_body_bytes",
        json_schema_extra=ADVANCED,
        description="A delivery with a larger body is refused with 413 before it is read whole.",
    )
    read_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        validation_alias="webhook_read_timeout_seconds",
        json_schema_extra=ADVANCED,
        description="A client slower than this to send its body gets 408.",
    )
    db_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        json_schema_extra=ADVANCED,
        description="A delivery not durable within this gets 503 (Svix retries).",
    )
    max_waiting: int = Field(
        default=10_000,
        ge=1,
        json_schema_extra=ADVANCED,
        description="Deliveries waiting for the database before 503 at once.",
    )


class InboxSettings(BaseModel):
    model_config = area("inbox_", "Inbox retention and sweep")

    body_retention_hours: float = Field(
        default=168.0, gt=0, description="Bodies of applied events are forgotten after this."
    )
    row_retention_days: float = Field(
        default=30.0, gt=0, description="Settled inbox rows are deleted after this."
    )
    failed_retention_days: float = Field(
        default=30.0,
        gt=0,
        description="Failed and discarded inbox rows are deleted this long after they were "
        "received (with their bodies): replay or discard them before.",
    )
    sweep_interval_seconds: int = Field(
        default=60,
        ge=1,
        le=3600,
        validation_alias="sweep_interval_seconds",
        json_schema_extra=ADVANCED,
        description="How often the worker looks for pending events whose wake-up was lost.",
    )
    sweep_grace_seconds: int = Field(
        default=30,
        ge=0,
        validation_alias="sweep_grace_seconds",
        json_schema_extra=ADVANCED,
        description="A pending event younger than this is left to its own wake-up by the sweep.",
    )
    sweep_batch_size: int = Field(
        default=1000,
        ge=1,
        validation_alias="sweep_batch_size",
        json_schema_extra=ADVANCED,
        description="Most pending events one sweep (and one retention pass) takes.",
    )


class ReconcileSettings(BaseModel):
    model_config = area("reconcile_", "Reconcile")

    api_version: str = Field(
        default="2026-05-12",
        validation_alias="clerk_api_version",
        description="The Clerk-API-Version header reconcile sends.",
    )
    cron_hours: str = Field(
        default="3",
        description="Hours (UTC, comma-separated) of the worker's nightly reconcile.",
    )
    cron_minute: int = Field(
        default=17,
        ge=0,
        le=59,
        description="Minute of those hours the nightly reconcile starts.",
    )
    # Reconcile modes (incremental nightly run, weekly full run)
    full_every_days: float = Field(
        default=7.0,
        gt=0,
        description="A full listing runs when the instance's last completed one is older than "
        "this; other runs list only what changed.",
    )
    max_delete_share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Most of a type's live rows one reconcile tombstones without --force.",
    )
    delete_floor: int = Field(
        default=10,
        ge=0,
        description="Tombstones always allowed, whatever RECONCILE_MAX_DELETE_SHARE says.",
    )
    confirm_deletions: bool = Field(
        default=True,
        description="Look each deletion candidate up in Clerk before tombstoning it.",
    )
    page_size: int = Field(
        default=500,
        ge=1,
        le=500,
        json_schema_extra=ADVANCED,
        description="Objects per Backend API page (Clerk allows at most 500).",
    )
    rate_share: float = Field(
        default=0.5,
        gt=0,
        le=0.95,
        json_schema_extra=ADVANCED,
        description="Share of Clerk's per-instance rate limit reconcile may use (the app keeps "
        "the rest).",
    )
    concurrency: int = Field(
        default=0,
        ge=0,
        le=64,
        json_schema_extra=ADVANCED,
        description="Requests reconcile keeps in flight per type; 0: as many as the rate budget "
        "allows.",
    )
    max_attempts: int = Field(
        default=6,
        ge=1,
        json_schema_extra=ADVANCED,
        description="Tries of one Backend API request (429 and 5xx are retried with backoff).",
    )
    timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        json_schema_extra=ADVANCED,
        description="How long one Backend API request may take.",
    )
    max_response_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        json_schema_extra=ADVANCED,
        description="A Backend API answer larger than this fails its type instead of being read.",
    )
    lock_ttl_seconds: int = Field(
        default=120,
        ge=10,
        json_schema_extra=ADVANCED,
        description="Lease on an instance's reconcile lock: a crashed run frees it after this.",
    )
    since_margin_seconds: float = Field(
        default=300.0,
        ge=0,
        json_schema_extra=ADVANCED,
        description="An incremental run lists users updated since the last complete run's "
        "start minus this margin (clock skew, writes in flight).",
    )
    full_when_differing_share: float = Field(
        default=0.05,
        gt=0,
        le=1,
        json_schema_extra=ADVANCED,
        description="An incremental run turns full when counting finds more than this share "
        "of an instance's users differing from the replica.",
    )

    def hours(self) -> set[int]:
        try:
            hours = {int(h) for h in self.cron_hours.split(",") if h.strip()}
        except ValueError:
            hours = set()
        if not hours or not all(0 <= h <= 23 for h in hours):
            raise ConfigError("RECONCILE_CRON_HOURS must be hours 0-23, comma-separated")
        return hours


class WebSettings(BaseModel):
    model_config = area("", "Serve")

    host: str = Field(default="127.0.0.1", description="Interface serve binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port serve listens on.")


class MetricsSettings(BaseModel):
    model_config = area("metrics_", "Metrics")

    token: SecretStr | None = Field(
        default=None, description="If set, GET /metrics requires Authorization: Bearer <token>."
    )
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="If set, serve answers /metrics on this port only, not on PORT.",
    )
    host: str = Field(
        default="127.0.0.1", description="Where serve's /metrics listens with METRICS_PORT."
    )
    cache_seconds: float = Field(
        default=15.0,
        ge=0,
        json_schema_extra=ADVANCED,
        description="How long /metrics reuses the gauges it read from the database.",
    )


class ConsoleSettings(BaseModel):
    model_config = area("console_", "Console")

    token: SecretStr | None = Field(
        default=None,
        description="If set (16 characters or more), serve answers /console: the password of "
        "its login form, and the key its session cookies are signed with. On METRICS_PORT "
        "when that is set, else on PORT.",
    )
    session_hours: float = Field(
        default=12.0, gt=0, le=24 * 30, description="How long a console login lasts."
    )
    stale_delivery_hours: float = Field(
        default=6.0,
        gt=0,
        description="The console flags an instance whose last delivery is older than this.",
    )
    stale_reconcile_hours: float = Field(
        default=26.0,
        gt=0,
        description="The console flags an instance whose last complete reconcile is older "
        "than this (or that has none).",
    )


class LogSettings(BaseModel):
    model_config = area("log_", "Logging")

    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="debug, info, warning or error."
    )
    format: Literal["auto", "json", "console"] = Field(
        default="auto", description="json, console, or auto (console on a terminal, else json)."
    )


class DevSettings(BaseModel):
    model_config = area("dev_", "Development")

    state_dir: str = Field(
        default=".clerk-replica", description="Where `dev` keeps its signing secret and Redis."
    )
