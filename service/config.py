"""Settings from the environment: the only place that reads environment variables.

What this install is configured with, including the variables each named Clerk
instance has of its own (CLERK_INSTANCES) and how they stand in for the single-instance ones.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, ValidationError, field_validator
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


def https_unless_loopback(value: str) -> str:
    """The secret key travels with every request: only over TLS, or to this machine."""
    url = urlsplit(value)
    if url.scheme == "https" and url.hostname:
        return value
    if url.scheme == "http" and _is_loopback(url.hostname):
        return value
    raise ValueError("must be an https:// URL (plain http only to a loopback address)")


def blank_is_unset(value: SecretStr | None) -> SecretStr | None:
    if value is not None and not value.get_secret_value().strip():
        return None
    return value


class ConfigError(RuntimeError):
    """A setting is missing or unusable; the message names the variable."""


# The size of the keys Svix generates: a shorter one could be guessed.
MIN_SIGNING_KEY_BYTES = 24
_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


def checked_signing_secret(value: str, variable: str) -> str:
    """`value` if it is a signing secret (optional whsec_, then base64 of at least
    MIN_SIGNING_KEY_BYTES bytes), else ConfigError naming `variable`, never the value."""
    key = value.removeprefix("whsec_")
    try:
        if not _BASE64.match(key):
            raise ValueError
        decoded = base64.b64decode(key + "=" * (-len(key) % 4), validate=True)
    except (ValueError, binascii.Error):
        raise ConfigError(
            f"{variable} is not a signing secret: expected whsec_ and base64, as Clerk's "
            "dashboard shows it (Webhooks -> your endpoint -> Signing Secret)"
        ) from None
    if len(decoded) < MIN_SIGNING_KEY_BYTES:
        raise ConfigError(
            f"{variable} is too short: a signing secret holds at least "
            f"{MIN_SIGNING_KEY_BYTES} bytes (Clerk's hold 24); copy it from Clerk's dashboard"
        )
    return value


# The instance the single-instance variables describe (CLERK_WEBHOOK_SIGNING_SECRET, ...).
DEFAULT_INSTANCE = "default"
_INSTANCE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# What each named instance has of its own: CLERK_<NAME>_<SUFFIX>, for the field it replaces.
INSTANCE_VARIABLES = {
    "WEBHOOK_SIGNING_SECRET": "clerk_webhook_signing_secret",
    "WEBHOOK_SIGNING_SECRET_PREVIOUS": "clerk_webhook_signing_secret_previous",
    "SECRET_KEY": "clerk_secret_key",
    "API_URL": "clerk_api_url",
    "MAX_REQUESTS_PER_10S": "reconcile_max_requests_per_10s",
    "INSTANCE_ID": "clerk_instance_id",
}
# A Clerk instance id (`ins_...`), as CLERK_<NAME>_INSTANCE_ID gives it.
_CLERK_INSTANCE_ID = r"^ins_[A-Za-z0-9]{1,64}$"


def webhook_path(instance: str) -> str:
    """Where Clerk delivers an instance's events: the plain path for the default instance."""
    return "/webhooks/clerk" if instance == DEFAULT_INSTANCE else f"/webhooks/clerk/{instance}"


def _instance_environ() -> dict[str, SecretStr]:
    """The CLERK_<NAME>_<SUFFIX> variables of the environment (names checked later, against
    CLERK_INSTANCES)."""
    suffixes = tuple(f"_{suffix}" for suffix in INSTANCE_VARIABLES)
    return {
        key.upper(): SecretStr(value)
        for key, value in os.environ.items()
        if key.upper().startswith("CLERK_") and key.upper().endswith(suffixes)
    }


def instance_variable(name: str, suffix: str) -> str:
    """The environment variable holding `suffix` (a key of INSTANCE_VARIABLES) for instance
    `name`: CLERK_PROD_SECRET_KEY, or the single-instance CLERK_SECRET_KEY for the default."""
    if name == DEFAULT_INSTANCE:
        return f"CLERK_{suffix}" if suffix != "MAX_REQUESTS_PER_10S" else f"RECONCILE_{suffix}"
    return f"CLERK_{name.upper()}_{suffix}"


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
    clerk_instances: str = Field(
        default="",
        description="Names of several Clerk instances kept in one replica, comma-separated "
        "(e.g. prod,staging); each reads CLERK_<NAME>_WEBHOOK_SIGNING_SECRET, "
        "CLERK_<NAME>_SECRET_KEY, ... and has its own endpoint /webhooks/clerk/<name>. "
        "Empty: one instance, from the variables below.",
    )
    instance_environ: dict[str, SecretStr] = Field(
        default_factory=_instance_environ,
        description="The CLERK_<NAME>_... variables (read from the environment; not set directly).",
    )
    clerk_webhook_signing_secret: SecretStr | None = Field(
        default=None, description="The whsec_... value from Clerk's dashboard; required by serve."
    )
    clerk_webhook_signing_secret_previous: SecretStr | None = Field(
        default=None, description="The old secret, still accepted during a rotation."
    )
    webhook_max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="A delivery with a larger body is refused with 413 before it is read whole.",
    )
    webhook_read_timeout_seconds: float = Field(
        default=10.0, gt=0, description="A client slower than this to send its body gets 408."
    )
    ingest_db_timeout_seconds: float = Field(
        default=5.0, gt=0, description="A delivery not durable within this gets 503 (Svix retries)."
    )
    ingest_max_waiting: int = Field(
        default=10_000, ge=1, description="Deliveries waiting for the database before 503 at once."
    )
    store_private_metadata: bool = Field(
        default=True,
        description="Keep users' and organizations' private_metadata in the replica; false stores"
        " NULL.",
    )
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
    db_pool_size: int = Field(
        default=10,
        ge=1,
        description="Connections each process keeps open to PostgreSQL.",
    )
    db_connect_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How long to wait for a database connection (and SQLite's busy lock).",
    )
    redis_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How long to wait for Redis to connect or answer.",
    )
    worker_concurrency: int = Field(
        default=10,
        ge=1,
        description="Jobs one worker runs at once.",
    )
    worker_max_tries: int = Field(
        default=8,
        ge=1,
        description="Tries arq gives one queued job before dropping it (the sweep wakes its "
        "events again).",
    )
    worker_max_event_attempts: int = Field(
        default=20, ge=1, description="Transient failures before an event is marked failed."
    )
    worker_poll_delay_seconds: float = Field(
        default=0.01,
        gt=0,
        description="How often an idle worker polls Redis for due jobs.",
    )
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
    worker_job_timeout_seconds: int = Field(
        default=60,
        ge=1,
        description="A job running longer is cancelled; also how long a job abandoned by a killed"
        " worker waits before another worker takes it.",
    )
    sweep_interval_seconds: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="How often the worker looks for pending events whose wake-up was lost.",
    )
    sweep_grace_seconds: int = Field(
        default=30,
        ge=0,
        description="A pending event younger than this is left to its own wake-up by the sweep.",
    )
    sweep_batch_size: int = Field(
        default=1000,
        ge=1,
        description="Most pending events one sweep (and one retention pass) takes.",
    )
    inbox_body_retention_hours: float = Field(
        default=168.0, gt=0, description="Bodies of applied events are forgotten after this."
    )
    inbox_row_retention_days: float = Field(
        default=30.0, gt=0, description="Settled inbox rows are deleted after this."
    )
    clerk_secret_key: SecretStr | None = Field(
        default=None, description="sk_live_... or sk_test_...; required by reconcile."
    )
    clerk_api_url: str = Field(
        default="https://api.clerk.com/v1",
        description="Clerk's Backend API, read by reconcile (https, or http to a loopback "
        "address).",
    )
    clerk_api_version: str = Field(
        default="2026-05-12",
        description="The Clerk-API-Version header reconcile sends.",
    )
    reconcile_page_size: int = Field(
        default=500,
        ge=1,
        le=500,
        description="Objects per Backend API page (Clerk allows at most 500).",
    )
    reconcile_rate_share: float = Field(
        default=0.5,
        gt=0,
        le=0.95,
        description="Share of Clerk's per-instance rate limit reconcile may use (the app keeps "
        "the rest).",
    )
    reconcile_max_requests_per_10s: int | None = Field(
        default=None,
        ge=1,
        description="Reconcile's request budget per 10 s; unset: RECONCILE_RATE_SHARE of Clerk's "
        "limit.",
    )
    reconcile_concurrency: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Requests reconcile keeps in flight per type; 0: as many as the rate budget "
        "allows.",
    )
    reconcile_max_attempts: int = Field(
        default=6,
        ge=1,
        description="Tries of one Backend API request (429 and 5xx are retried with backoff).",
    )
    reconcile_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long one Backend API request may take.",
    )
    reconcile_max_response_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="A Backend API answer larger than this fails its type instead of being read.",
    )
    reconcile_max_delete_share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Most of a type's live rows one reconcile tombstones without --force.",
    )
    reconcile_delete_floor: int = Field(
        default=10,
        ge=0,
        description="Tombstones always allowed, whatever RECONCILE_MAX_DELETE_SHARE says.",
    )
    reconcile_confirm_deletions: bool = Field(
        default=True,
        description="Look each deletion candidate up in Clerk before tombstoning it.",
    )
    reconcile_cron_hours: str = Field(
        default="3",
        description="Hours (UTC, comma-separated) of the worker's nightly reconcile.",
    )
    reconcile_cron_minute: int = Field(
        default=17,
        ge=0,
        le=59,
        description="Minute of those hours the nightly reconcile starts.",
    )
    reconcile_lock_ttl_seconds: int = Field(
        default=120,
        ge=10,
        description="Lease on an instance's reconcile lock: a crashed run frees it after this.",
    )
    # Reconcile modes (incremental nightly run, weekly full run)
    reconcile_full_every_days: float = Field(
        default=7.0,
        gt=0,
        description="A full listing runs when the instance's last completed one is older than "
        "this; other runs list only what changed.",
    )
    reconcile_since_margin_seconds: float = Field(
        default=300.0,
        ge=0,
        description="An incremental run lists users updated since the last complete run's "
        "start minus this margin (clock skew, writes in flight).",
    )
    reconcile_full_when_differing_share: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="An incremental run turns full when counting finds more than this share "
        "of an instance's users differing from the replica.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info",
        description="debug, info, warning or error.",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description="json, console, or auto (console on a terminal, else json).",
    )
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
    # The console (/console, served by `serve`).
    console_token: SecretStr | None = Field(
        default=None,
        description="If set (16 characters or more), serve answers /console: the password of "
        "its login form, and the key its session cookies are signed with. On METRICS_PORT "
        "when that is set, else on PORT.",
    )
    console_session_hours: float = Field(
        default=12.0, gt=0, le=24 * 30, description="How long a console login lasts."
    )
    console_stale_delivery_hours: float = Field(
        default=6.0,
        gt=0,
        description="The console flags an instance whose last delivery is older than this.",
    )
    console_stale_reconcile_hours: float = Field(
        default=26.0,
        gt=0,
        description="The console flags an instance whose last complete reconcile is older "
        "than this (or that has none).",
    )
    host: str = Field(
        default="127.0.0.1",
        description="Interface serve binds.",
    )
    port: int = Field(
        default=8000,
        ge=1,
        le=65535,
        description="Port serve listens on.",
    )
    # Operations (issue 30): worker liveness, failed events' retention.
    worker_heartbeat_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How often each worker records in Redis that it is alive; status and "
        "/metrics count a worker alive while its last beat is within three periods.",
    )
    inbox_failed_retention_days: float = Field(
        default=30.0,
        gt=0,
        description="Failed and discarded inbox rows are deleted this long after they were "
        "received (with their bodies): replay or discard them before.",
    )

    # Instances kept apart (issue 27): the Clerk instance an endpoint's events belong to.
    clerk_instance_id: str | None = Field(
        default=None,
        pattern=_CLERK_INSTANCE_ID,
        description="The Clerk instance id (ins_...) the default endpoint belongs to; named "
        "instances read CLERK_<NAME>_INSTANCE_ID. Unset: learned from reconcile's GET /instance "
        "or the endpoint's first delivery. An envelope naming another instance is refused.",
    )

    # The instance these settings speak for (`for_instance`): DEFAULT_INSTANCE unless named.
    _instance: str = PrivateAttr(default=DEFAULT_INSTANCE)

    @property
    def instance_name(self) -> str:
        return self._instance

    def instance_names(self) -> list[str]:
        """The instances this install keeps: the named ones (CLERK_INSTANCES), with the
        default one first when its own variables are set too, or the default alone."""
        named: list[str] = []
        for raw_name in self.clerk_instances.split(","):
            name = raw_name.strip().lower()
            if not name:
                continue
            if not _INSTANCE_NAME.match(name) or name == DEFAULT_INSTANCE:
                raise ConfigError(
                    f"CLERK_INSTANCES: {name!r} is not an instance name (a-z, 0-9 and _, "
                    f"starting with a letter, at most 32; {DEFAULT_INSTANCE!r} is reserved)"
                )
            if name not in named:
                named.append(name)
        if not named:
            return [DEFAULT_INSTANCE]
        single = self.clerk_webhook_signing_secret is not None or self.clerk_secret_key is not None
        return [DEFAULT_INSTANCE, *named] if single else named

    def for_instance(self, name: str) -> Settings:
        """These settings as instance `name` sees them: its own secrets, key and API URL in
        place of the single-instance ones (the default instance: these settings)."""
        if name == DEFAULT_INSTANCE:
            return self
        if name not in self.instance_names():
            raise ConfigError(
                f"unknown instance {name!r}: CLERK_INSTANCES names "
                f"{', '.join(self.instance_names())}"
            )
        environ = {k.upper(): v.get_secret_value() for k, v in self.instance_environ.items()}
        given: dict[str, Any] = {
            # What a named instance does not set itself is the single-instance value.
            "clerk_api_url": self.clerk_api_url,
            "reconcile_max_requests_per_10s": self.reconcile_max_requests_per_10s,
        }
        for suffix, field in INSTANCE_VARIABLES.items():
            value = environ.get(instance_variable(name, suffix))
            if value is not None:
                given[field] = value
        try:
            checked = _InstanceVariables.model_validate(given)
        except ValidationError as exc:
            problems = "; ".join(
                f"{instance_variable(name, _suffix_of(str(err['loc'][0])))}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"invalid configuration: {problems}") from None
        copy = self.model_copy(update=checked.model_dump())
        copy._instance = name
        return copy

    def instances(self) -> list[Settings]:
        """`for_instance` of every instance this install keeps."""
        return [self.for_instance(name) for name in self.instance_names()]

    def instance_ids(self) -> dict[str, str]:
        """The configured instance ids by name (CLERK_<NAME>_INSTANCE_ID); refuses one id given
        to two names."""
        found: dict[str, str] = {}
        for name in self.instance_names():
            if name != DEFAULT_INSTANCE:
                instance_id = self.for_instance(name).clerk_instance_id
            elif self._instance == DEFAULT_INSTANCE:
                instance_id = self.clerk_instance_id
            else:  # these settings are a named instance's: the default's is in the environment
                given = self.instance_environ.get(instance_variable(name, "INSTANCE_ID"))
                instance_id = given.get_secret_value() if given is not None else None
            if instance_id is None:
                continue
            other = next((n for n, i in found.items() if i == instance_id), None)
            if other is not None:
                raise ConfigError(
                    f"{instance_variable(name, 'INSTANCE_ID')} names the Clerk instance that "
                    f"{instance_variable(other, 'INSTANCE_ID')} names: one instance, one name"
                )
            found[name] = instance_id
        return found

    def _variable(self, suffix: str) -> str:
        return instance_variable(self._instance, suffix)

    _https_unless_loopback = field_validator("clerk_api_url")(https_unless_loopback)
    _blank_is_unset = field_validator(
        "clerk_webhook_signing_secret", "clerk_webhook_signing_secret_previous"
    )(blank_is_unset)

    def signing_secrets(self) -> list[str]:
        """The secrets to verify with, current first; refuses to start without one."""
        if self.clerk_webhook_signing_secret is None:
            raise ConfigError(
                f"{self._variable('WEBHOOK_SIGNING_SECRET')} is not set: copy the whsec_... "
                "signing secret from Clerk's dashboard (Webhooks -> your endpoint)"
            )
        secrets = [(self.clerk_webhook_signing_secret, "WEBHOOK_SIGNING_SECRET")]
        if self.clerk_webhook_signing_secret_previous is not None:
            previous = self.clerk_webhook_signing_secret_previous
            secrets.append((previous, "WEBHOOK_SIGNING_SECRET_PREVIOUS"))
        return [
            checked_signing_secret(secret.get_secret_value().strip(), self._variable(suffix))
            for secret, suffix in secrets
        ]

    def clerk_key(self) -> str:
        if self.clerk_secret_key is None:
            raise ConfigError(
                f"{self._variable('SECRET_KEY')} is not set: copy the secret key (sk_live_... "
                "or sk_test_...) from Clerk's dashboard (API keys)"
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


class _InstanceVariables(BaseModel):
    """A named instance's own variables, checked as the single-instance ones are."""

    clerk_webhook_signing_secret: SecretStr | None = None
    clerk_webhook_signing_secret_previous: SecretStr | None = None
    clerk_secret_key: SecretStr | None = None
    clerk_api_url: str
    reconcile_max_requests_per_10s: int | None = Field(default=None, ge=1)
    clerk_instance_id: str | None = Field(default=None, pattern=_CLERK_INSTANCE_ID)

    _https_unless_loopback = field_validator("clerk_api_url")(https_unless_loopback)
    _blank_is_unset = field_validator(
        "clerk_webhook_signing_secret", "clerk_webhook_signing_secret_previous", "clerk_secret_key"
    )(blank_is_unset)


def _suffix_of(field: str) -> str:
    return next(suffix for suffix, name in INSTANCE_VARIABLES.items() if name == field)


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


# --- issue 28: the settings by variable, and variables that look like ours but are not ---

# Variables of Clerk's own SDKs and tools that share our CLERK_ prefix: never warned about.
CLERK_SDK_VARIABLES = frozenset(
    {
        "CLERK_PUBLISHABLE_KEY",
        "CLERK_JWT_KEY",
        "CLERK_ENCRYPTION_KEY",
        "CLERK_MACHINE_SECRET_KEY",
        "CLERK_API_KEY",
        "CLERK_FRONTEND_API",
        "CLERK_FRONTEND_API_URL",
        "CLERK_BACKEND_API_URL",
        "CLERK_DOMAIN",
        "CLERK_PROXY_URL",
        "CLERK_IS_SATELLITE",
        "CLERK_JS_URL",
        "CLERK_JS_VERSION",
        "CLERK_SIGN_IN_URL",
        "CLERK_SIGN_UP_URL",
        "CLERK_SIGN_IN_FORCE_REDIRECT_URL",
        "CLERK_SIGN_UP_FORCE_REDIRECT_URL",
        "CLERK_SIGN_IN_FALLBACK_REDIRECT_URL",
        "CLERK_SIGN_UP_FALLBACK_REDIRECT_URL",
        "CLERK_AFTER_SIGN_IN_URL",
        "CLERK_AFTER_SIGN_UP_URL",
        "CLERK_AFTER_SIGN_OUT_URL",
        "CLERK_TELEMETRY_DISABLED",
        "CLERK_TELEMETRY_DEBUG",
        "CLERK_AUTHORIZED_PARTIES",
    }
)
# How alike (difflib's ratio) a name must be to one of ours to count as its misspelling.
LOOKALIKE_CUTOFF = 0.8


def setting_variables() -> dict[str, str]:
    """Every setting's environment variable -> its Settings field (CLERK_<NAME>_... of the
    named instances are not fields: see instance_variable)."""
    return {name.upper(): name for name in Settings.model_fields if name != "instance_environ"}


def _declared_instances(environ: dict[str, str]) -> list[str]:
    raw = environ.get("CLERK_INSTANCES", "")
    return [name.strip().lower() for name in raw.split(",") if name.strip()]


def lookalike_variables(environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(variable, advice) for each variable of the environment that looks like one of our
    settings but is none: its first word is one of our settings' (CLERK_, RECONCILE_, ...) and
    it is close to one of our names, or it has an instance's suffix for an instance that
    CLERK_INSTANCES does not name. Names only: values are never read."""
    env = {
        key.upper(): value for key, value in (os.environ if environ is None else environ).items()
    }
    ours = set(setting_variables())
    prefixes = {name.split("_", 1)[0] + "_" for name in ours if "_" in name}
    declared = _declared_instances(env)
    known = ours | {
        instance_variable(name, suffix) for name in declared for suffix in INSTANCE_VARIABLES
    }
    suffixes = sorted(INSTANCE_VARIABLES, key=len, reverse=True)
    found: list[tuple[str, str]] = []
    for variable in sorted(env):
        if variable in known or variable in CLERK_SDK_VARIABLES:
            continue
        if not variable.startswith(tuple(prefixes)):
            continue
        suffix = next((s for s in suffixes if variable.endswith(f"_{s}")), None)
        name = variable.removeprefix("CLERK_").removesuffix(f"_{suffix}").lower()
        instance_like = (
            suffix is not None and variable.startswith("CLERK_") and _INSTANCE_NAME.match(name)
        )
        # An instance's variable is compared with the declared instances' only.
        names = sorted(known - ours) if instance_like else sorted(known)
        close = difflib.get_close_matches(variable, names, n=1, cutoff=LOOKALIKE_CUTOFF)
        if close:
            found.append((variable, f"did you mean {close[0]}?"))
        elif instance_like:
            found.append((variable, f"CLERK_INSTANCES does not name an instance {name!r}"))
    return found


def masked_url(url: str) -> str:
    """A database or Redis URL fit to print: its password (if any) replaced by ***."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparsable URL)"
