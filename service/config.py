"""Settings from the environment: the only place that reads environment variables."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConfigError(RuntimeError):
    """A setting is missing or unusable; the message names the variable."""


class Settings(BaseSettings):
    """Every setting has a default that works on one machine, except the signing secret."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    database_url: str = Field(
        default="sqlite:///./clerk-replica.db",
        description="Replica database: postgres://, postgresql://, postgresql+asyncpg:// "
        "or sqlite:///path.",
    )
    redis_url: str = Field(default="redis://localhost:6379/0", description="arq's Redis.")
    replica_schema: str = Field(
        default="public",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema of the replica tables, the inbox and the bookkeeping.",
    )
    clerk_fdw_schema: str = Field(
        default="clerk_fdw",
        pattern=r"^([a-z_][a-z0-9_]{0,62})?$",
        description="PostgreSQL schema for the clerk_fdw-compatible views; empty: none.",
    )
    queue_prefix: str = Field(
        default="clerk-replica", description="Namespaces queue and job keys in a shared Redis."
    )
    clerk_webhook_signing_secret: SecretStr | None = Field(
        default=None, description="The whsec_... value from Clerk's dashboard; required by serve."
    )
    clerk_webhook_signing_secret_previous: SecretStr | None = Field(
        default=None, description="The old secret, still accepted during a rotation."
    )
    webhook_max_body_bytes: int = Field(default=1_048_576, ge=1024)
    webhook_read_timeout_seconds: float = Field(
        default=10.0, gt=0, description="A client slower than this to send its body gets 408."
    )
    ingest_db_timeout_seconds: float = Field(
        default=5.0, gt=0, description="A delivery not durable within this gets 503 (Svix retries)."
    )
    ingest_max_waiting: int = Field(
        default=10_000, ge=1, description="Deliveries waiting for the database before 503 at once."
    )
    store_private_metadata: bool = True
    erase_deleted_users: bool = Field(
        default=True, description="Erase a user's personal data when Clerk deletes the user."
    )
    change_feed: bool = Field(
        default=True,
        description="Append every change of a replica row to clerk_replica_changes (and NOTIFY "
        "on PostgreSQL); read by migrations (the triggers) and by the writers.",
    )
    changes_retention_days: float = Field(
        default=7, gt=0, description="Days the change feed keeps a change before pruning it."
    )
    db_pool_size: int = Field(default=10, ge=1)
    db_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    redis_timeout_seconds: float = Field(default=2.0, gt=0)
    worker_concurrency: int = Field(default=10, ge=1)
    worker_max_tries: int = Field(default=8, ge=1)
    worker_max_event_attempts: int = Field(
        default=20, ge=1, description="Transient failures before an event is marked failed."
    )
    worker_poll_delay_seconds: float = Field(default=0.01, gt=0)
    worker_batch_size: int = Field(
        default=250, ge=1, le=2000, description="Most events one apply transaction takes."
    )
    worker_batch_streams: int = Field(
        default=2, ge=1, le=16, description="Batches one apply job runs at once (PostgreSQL)."
    )
    worker_wake_window_ms: int = Field(
        default=20,
        ge=1,
        le=5000,
        description="Deliveries within one window share one queued apply job.",
    )
    # Also how long a job abandoned by a killed worker waits before another worker takes it.
    worker_job_timeout_seconds: int = Field(default=60, ge=1)
    sweep_interval_seconds: int = Field(default=60, ge=1, le=3600)
    sweep_grace_seconds: int = Field(default=30, ge=0)
    sweep_batch_size: int = Field(default=1000, ge=1)
    inbox_body_retention_hours: float = Field(
        default=168.0, gt=0, description="Bodies of applied events are forgotten after this."
    )
    inbox_row_retention_days: float = Field(
        default=30.0, gt=0, description="Settled inbox rows are deleted after this."
    )
    clerk_secret_key: SecretStr | None = Field(
        default=None, description="sk_live_... or sk_test_...; required by reconcile."
    )
    clerk_api_url: str = "https://api.clerk.com/v1"
    clerk_api_version: str = "2026-05-12"
    reconcile_page_size: int = Field(default=500, ge=1, le=500)
    reconcile_rate_share: float = Field(default=0.5, gt=0, le=0.95)
    reconcile_max_requests_per_10s: int | None = Field(default=None, ge=1)
    reconcile_concurrency: int = Field(default=0, ge=0, le=64)
    reconcile_max_attempts: int = Field(default=6, ge=1)
    reconcile_timeout_seconds: float = Field(default=30.0, gt=0)
    reconcile_max_response_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="A Backend API answer larger than this fails its type instead of being read.",
    )
    reconcile_max_delete_share: float = Field(default=0.1, ge=0, le=1)
    reconcile_delete_floor: int = Field(default=10, ge=0)
    reconcile_confirm_deletions: bool = True
    reconcile_cron_hours: str = "3"
    reconcile_cron_minute: int = Field(default=17, ge=0, le=59)
    reconcile_lock_ttl_seconds: int = Field(default=120, ge=10)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    dev_state_dir: str = Field(
        default=".clerk-replica", description="Where `dev` keeps its signing secret and Redis."
    )
    metrics_cache_seconds: float = Field(
        default=15.0,
        ge=0,
        description="How long /metrics reuses the gauges it read from the database.",
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="If set, GET /metrics requires Authorization: Bearer <token>."
    )
    worker_metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="If set, the worker serves /metrics there."
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1", description="Where the worker's /metrics listens."
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="If set, serve answers /metrics on this port only, not on PORT.",
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Where serve's /metrics listens with METRICS_PORT."
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    @field_validator("clerk_api_url")
    @classmethod
    def _https_unless_loopback(cls, value: str) -> str:
        """The secret key travels with every request: only over TLS, or to this machine."""
        url = urlsplit(value)
        if url.scheme == "https" and url.hostname:
            return value
        if url.scheme == "http" and _is_loopback(url.hostname):
            return value
        raise ValueError("must be an https:// URL (plain http only to a loopback address)")

    @field_validator("clerk_webhook_signing_secret", "clerk_webhook_signing_secret_previous")
    @classmethod
    def _blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None
        return value

    def signing_secrets(self) -> list[str]:
        """The secrets to verify with, current first; refuses to start without one."""
        if self.clerk_webhook_signing_secret is None:
            raise ConfigError(
                "CLERK_WEBHOOK_SIGNING_SECRET is not set: copy the whsec_... signing secret "
                "from Clerk's dashboard (Webhooks -> your endpoint)"
            )
        secrets = [self.clerk_webhook_signing_secret]
        if self.clerk_webhook_signing_secret_previous is not None:
            secrets.append(self.clerk_webhook_signing_secret_previous)
        return [s.get_secret_value().strip() for s in secrets]

    def clerk_key(self) -> str:
        if self.clerk_secret_key is None:
            raise ConfigError(
                "CLERK_SECRET_KEY is not set: copy the secret key (sk_live_... or sk_test_...) "
                "from Clerk's dashboard (API keys)"
            )
        return self.clerk_secret_key.get_secret_value().strip()

    def clerk_requests_per_10s(self) -> int:
        """Our share of Clerk's per-instance limit: 1000/10 s live, 100/10 s development."""
        if self.reconcile_max_requests_per_10s is not None:
            return self.reconcile_max_requests_per_10s
        limit = 1000 if self.clerk_key().startswith("sk_live_") else 100
        return max(1, int(limit * self.reconcile_rate_share))

    def reconcile_hours(self) -> set[int]:
        try:
            hours = {int(h) for h in self.reconcile_cron_hours.split(",") if h.strip()}
        except ValueError:
            hours = set()
        if not hours or not all(0 <= h <= 23 for h in hours):
            raise ConfigError("RECONCILE_CRON_HOURS must be hours 0-23, comma-separated")
        return hours


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process."""
    try:
        return Settings()
    except ValidationError as exc:
        # Name the variables but never echo their values: one of them may be a secret.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
