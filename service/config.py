"""Settings from the environment: the only place that reads environment variables.

What this install is configured with, in groups by area (settings.reconcile.page_size), each
setting read from its own flat variable (RECONCILE_PAGE_SIZE); the variables each named Clerk
instance has of its own (CLERK_INSTANCES) and how they stand in for the single-instance ones.
Tuning knobs are marked ADVANCED: their defaults suit nearly every install.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


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
# What each named instance has of its own: CLERK_<NAME>_<SUFFIX>, for the InstanceSettings field.
INSTANCE_VARIABLES = {
    "WEBHOOK_SIGNING_SECRET": "webhook_signing_secret",
    "WEBHOOK_SIGNING_SECRET_PREVIOUS": "webhook_signing_secret_previous",
    "SECRET_KEY": "secret_key",
    "API_URL": "api_url",
    "MAX_REQUESTS_PER_10S": "max_requests_per_10s",
    "INSTANCE_ID": "instance_id",
}
# A Clerk instance id (`ins_...`), as CLERK_<NAME>_INSTANCE_ID gives it.
_CLERK_INSTANCE_ID = r"^ins_[A-Za-z0-9]{1,64}$"
# A tuning knob: its default suits nearly every install (the reference lists it apart).
ADVANCED: dict[str, Any] = {"advanced": True}


def webhook_path(instance: str) -> str:
    """Where Clerk delivers an instance's events: the plain path for the default instance."""
    return "/webhooks/clerk" if instance == DEFAULT_INSTANCE else f"/webhooks/clerk/{instance}"


def instance_variable(name: str, suffix: str) -> str:
    """The environment variable holding `suffix` (a key of INSTANCE_VARIABLES) for instance
    `name`: CLERK_PROD_SECRET_KEY, or the single-instance CLERK_SECRET_KEY for the default."""
    if name == DEFAULT_INSTANCE:
        return f"CLERK_{suffix}" if suffix != "MAX_REQUESTS_PER_10S" else f"RECONCILE_{suffix}"
    return f"CLERK_{name.upper()}_{suffix}"


def _group(prefix: str, title: str) -> ConfigDict:
    """A group's fields read PREFIX_<FIELD> unless a field names its variable (alias)."""
    return ConfigDict(
        title=title,
        alias_generator=AliasGenerator(validation_alias=lambda name: prefix + name),
        populate_by_name=True,
    )


class DatabaseSettings(BaseModel):
    model_config = _group("db_", "Database")

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
    model_config = _group("redis_", "Redis and the queue")

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


class InstanceSettings(BaseModel):
    """One Clerk instance's own variables: the single-instance ones (CLERK_SECRET_KEY, ...) for
    the default instance, CLERK_<NAME>_... for a named one; checked by this one model."""

    model_config = _group("clerk_", "Clerk instances")

    webhook_signing_secret: SecretStr | None = Field(
        default=None, description="The whsec_... value from Clerk's dashboard; required by serve."
    )
    webhook_signing_secret_previous: SecretStr | None = Field(
        default=None, description="The old secret, still accepted during a rotation."
    )
    secret_key: SecretStr | None = Field(
        default=None, description="sk_live_... or sk_test_...; required by reconcile."
    )
    api_url: str = Field(
        default="https://api.clerk.com/v1",
        description="Clerk's Backend API, read by reconcile (https, or http to a loopback "
        "address).",
    )
    instance_id: str | None = Field(
        default=None,
        pattern=_CLERK_INSTANCE_ID,
        description="The Clerk instance id (ins_...) the default endpoint belongs to; named "
        "instances read CLERK_<NAME>_INSTANCE_ID. Unset: learned from reconcile's GET /instance "
        "or the endpoint's first delivery. An envelope naming another instance is refused.",
    )
    max_requests_per_10s: int | None = Field(
        default=None,
        ge=1,
        validation_alias="reconcile_max_requests_per_10s",
        json_schema_extra=ADVANCED,
        description="Reconcile's request budget per 10 s; unset: RECONCILE_RATE_SHARE of Clerk's "
        "limit.",
    )

    # Which instance these are (CLERK_INSTANCES): DEFAULT_INSTANCE unless named.
    _name: str = PrivateAttr(default=DEFAULT_INSTANCE)

    _https_unless_loopback = field_validator("api_url")(https_unless_loopback)
    _blank_is_unset = field_validator(
        "webhook_signing_secret", "webhook_signing_secret_previous", "secret_key"
    )(blank_is_unset)

    @property
    def name(self) -> str:
        return self._name

    def variable(self, suffix: str) -> str:
        """This instance's variable for `suffix` (a key of INSTANCE_VARIABLES)."""
        return instance_variable(self._name, suffix)

    def signing_secrets(self) -> list[str]:
        """The secrets to verify with, current first; refuses to start without one."""
        if self.webhook_signing_secret is None:
            raise ConfigError(
                f"{self.variable('WEBHOOK_SIGNING_SECRET')} is not set: copy the whsec_... "
                "signing secret from Clerk's dashboard (Webhooks -> your endpoint)"
            )
        secrets = [(self.webhook_signing_secret, "WEBHOOK_SIGNING_SECRET")]
        if self.webhook_signing_secret_previous is not None:
            secrets.append(
                (self.webhook_signing_secret_previous, "WEBHOOK_SIGNING_SECRET_PREVIOUS")
            )
        return [
            checked_signing_secret(secret.get_secret_value().strip(), self.variable(suffix))
            for secret, suffix in secrets
        ]

    def key(self) -> str:
        """The secret key reconcile sends; refuses without one."""
        if self.secret_key is None:
            raise ConfigError(
                f"{self.variable('SECRET_KEY')} is not set: copy the secret key (sk_live_... "
                "or sk_test_...) from Clerk's dashboard (API keys)"
            )
        return self.secret_key.get_secret_value().strip()


class WorkerSettings(BaseModel):
    model_config = _group("worker_", "Worker")

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
    model_config = _group("ingest_", "Webhook ingest")

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
    model_config = _group("inbox_", "Inbox retention and sweep")

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
    model_config = _group("reconcile_", "Reconcile")

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
    model_config = _group("", "Serve")

    host: str = Field(default="127.0.0.1", description="Interface serve binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port serve listens on.")


class MetricsSettings(BaseModel):
    model_config = _group("metrics_", "Metrics")

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
    model_config = _group("console_", "Console")

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
    model_config = _group("log_", "Logging")

    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="debug, info, warning or error."
    )
    format: Literal["auto", "json", "console"] = Field(
        default="auto", description="json, console, or auto (console on a terminal, else json)."
    )


class DevSettings(BaseModel):
    model_config = _group("dev_", "Development")

    state_dir: str = Field(
        default=".clerk-replica", description="Where `dev` keeps its signing secret and Redis."
    )


# Settings' groups by attribute, in the order the reference and `config` show them.
GROUPS: dict[str, type[BaseModel]] = {
    "database": DatabaseSettings,
    "redis": RedisSettings,
    "clerk": InstanceSettings,
    "web": WebSettings,
    "ingest": IngestSettings,
    "worker": WorkerSettings,
    "inbox": InboxSettings,
    "reconcile": ReconcileSettings,
    "metrics": MetricsSettings,
    "console": ConsoleSettings,
    "log": LogSettings,
    "dev": DevSettings,
}


@dataclass(frozen=True)
class Setting:
    """One setting: its environment variable, where it lives in Settings, its field."""

    variable: str
    group: str | None  # an attribute of Settings, or None for a top-level field
    name: str
    info: FieldInfo

    @property
    def path(self) -> str:
        return self.name if self.group is None else f"{self.group}.{self.name}"

    @property
    def area(self) -> str:
        """The title of the setting's group; a top-level setting's is the instances'."""
        title = None if self.group is None else GROUPS[self.group].model_config.get("title")
        return title or str(InstanceSettings.model_config.get("title"))

    @property
    def advanced(self) -> bool:
        extra = self.info.json_schema_extra
        return isinstance(extra, dict) and extra.get("advanced") is True

    def value(self, settings: Settings) -> Any:
        holder = settings if self.group is None else getattr(settings, self.group)
        return getattr(holder, self.name)

    def is_set(self, settings: Settings) -> bool:
        """Whether the environment (or a keyword) gave it, rather than its default."""
        holder = settings if self.group is None else getattr(settings, self.group)
        return self.name in holder.model_fields_set


def _variable(name: str, info: FieldInfo) -> str:
    alias = info.validation_alias
    return (alias if isinstance(alias, str) else name).upper()


class _Environment(PydanticBaseSettingsSource):
    """Each setting from its own flat variable (RECONCILE_PAGE_SIZE, not RECONCILE__PAGE_SIZE),
    keyed by its lower-case name for Settings to group; and the CLERK_<NAME>_<SUFFIX> variables
    of the named instances, checked against CLERK_INSTANCES by for_instance."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads every variable at once

    def __call__(self) -> dict[str, Any]:
        environ = {key.upper(): value for key, value in os.environ.items()}
        found: dict[str, Any] = {
            variable.lower(): environ[variable] for variable in _BY_VARIABLE if variable in environ
        }
        if "instance_environ" in self.current_state:
            return found  # given whole (tests): not merged with the environment's
        suffixes = tuple(f"_{suffix}" for suffix in INSTANCE_VARIABLES)
        found["instance_environ"] = {
            key: value
            for key, value in environ.items()
            if key.startswith("CLERK_") and key.endswith(suffixes)
        }
        return found


class Settings(BaseSettings):
    """Every setting has a default that works on one machine, except the signing secret.

    Grouped by area (settings.reconcile.page_size); each field still reads its flat variable
    (RECONCILE_PAGE_SIZE), and the constructor and `updated` take those flat names too."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    database: DatabaseSettings = Field(default_factory=DatabaseSettings, description="Database")
    redis: RedisSettings = Field(default_factory=RedisSettings, description="Redis")
    clerk_instances: str = Field(
        default="",
        description="Names of several Clerk instances kept in one replica, comma-separated "
        "(e.g. prod,staging); each reads CLERK_<NAME>_WEBHOOK_SIGNING_SECRET, "
        "CLERK_<NAME>_SECRET_KEY, ... and has its own endpoint /webhooks/clerk/<name>. "
        "Empty: one instance, from the variables below.",
    )
    instance_environ: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="The CLERK_<NAME>_... variables (read from the environment; not set directly).",
    )
    # The instance these settings speak for (`for_instance`): the default one unless named.
    clerk: InstanceSettings = Field(default_factory=InstanceSettings, description="Instance")
    web: WebSettings = Field(default_factory=WebSettings, description="Serve")
    ingest: IngestSettings = Field(default_factory=IngestSettings, description="Ingest")
    worker: WorkerSettings = Field(default_factory=WorkerSettings, description="Worker")
    inbox: InboxSettings = Field(default_factory=InboxSettings, description="Inbox")
    reconcile: ReconcileSettings = Field(default_factory=ReconcileSettings, description="Reconcile")
    metrics: MetricsSettings = Field(default_factory=MetricsSettings, description="Metrics")
    console: ConsoleSettings = Field(default_factory=ConsoleSettings, description="Console")
    log: LogSettings = Field(default_factory=LogSettings, description="Logging")
    dev: DevSettings = Field(default_factory=DevSettings, description="Development")

    # In for_instance's copy, the default instance's variables that `clerk` replaced.
    _single: InstanceSettings | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _Environment(settings_cls)

    @model_validator(mode="before")
    @classmethod
    def _grouped(cls, data: Any) -> Any:
        """Flat names (reconcile_page_size=..., as the variables are spelt) into their groups."""
        if not isinstance(data, dict):
            return data
        flat = {
            key: setting
            for key in data
            if isinstance(key, str)
            and (setting := _BY_NAME.get(key.lower())) is not None
            and setting.group is not None
        }
        grouped = {key: value for key, value in data.items() if key not in flat}
        for key, setting in flat.items():  # after the groups given whole: these amend them
            assert setting.group is not None
            group = grouped.setdefault(setting.group, {})
            if isinstance(group, BaseModel):  # a group given whole, and one of its fields
                given = group
                group = grouped[setting.group] = {
                    _variable(name, info).lower(): getattr(given, name)
                    for name, info in type(given).model_fields.items()
                    if name in given.model_fields_set
                }
            group[setting.variable.lower()] = data[key]
        return grouped

    def updated(self, **flat: Any) -> Settings:
        """A copy with the given settings changed, named as their variables are (lower case):
        `settings.updated(reconcile_page_size=5)`. Not validated, as model_copy."""
        top: dict[str, Any] = {}
        groups: dict[str, dict[str, Any]] = {}
        for key, value in flat.items():
            setting = _BY_NAME.get(key.lower())
            if setting is None and key == "instance_environ":
                top[key] = value
            elif setting is None:
                raise TypeError(f"no setting {key!r}")
            elif setting.group is None:
                top[setting.name] = value
            else:
                groups.setdefault(setting.group, {})[setting.name] = value
        for group, changes in groups.items():
            top[group] = getattr(self, group).model_copy(update=changes)
        return self.model_copy(update=top)

    def is_set(self, variable: str) -> bool:
        """Whether `variable` (DATABASE_URL, ...) was given rather than left at its default."""
        return setting(variable).is_set(self)

    @property
    def instance_name(self) -> str:
        return self.clerk.name

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
        default = self._default_instance()
        single = default.webhook_signing_secret is not None or default.secret_key is not None
        return [DEFAULT_INSTANCE, *named] if single else named

    def _default_instance(self) -> InstanceSettings:
        """The single-instance variables, also in a named instance's copy of these settings."""
        return self.clerk if self._single is None else self._single

    def _instance_settings(self, name: str) -> InstanceSettings:
        """Instance `name`'s own variables, checked; what it does not set itself is the
        single-instance value, except its secrets, key and id."""
        environ = {k.upper(): v.get_secret_value() for k, v in self.instance_environ.items()}
        single = self._default_instance()
        given: dict[str, Any] = {
            "api_url": single.api_url,
            "max_requests_per_10s": single.max_requests_per_10s,
        }
        for suffix, field in INSTANCE_VARIABLES.items():
            value = environ.get(instance_variable(name, suffix))
            if value is not None:
                given[field] = value
        try:
            instance = InstanceSettings.model_validate(given)
        except ValidationError as exc:  # given by field name: each error is at its field
            suffix_of = {field: suffix for suffix, field in INSTANCE_VARIABLES.items()}
            problems = "; ".join(
                f"{instance_variable(name, suffix_of[str(err['loc'][0])])}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"invalid configuration: {problems}") from None
        instance._name = name
        return instance

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
        copy = self.model_copy(update={"clerk": self._instance_settings(name)})
        copy._single = self._default_instance()
        return copy

    def instances(self) -> list[Settings]:
        """`for_instance` of every instance this install keeps."""
        return [self.for_instance(name) for name in self.instance_names()]

    def instance_ids(self) -> dict[str, str]:
        """The configured instance ids by name (CLERK_<NAME>_INSTANCE_ID); refuses one id given
        to two names."""
        found: dict[str, str] = {}
        for name in self.instance_names():
            if name == DEFAULT_INSTANCE:
                instance_id = self._default_instance().instance_id
            else:
                instance_id = self._instance_settings(name).instance_id
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

    def signing_secrets(self) -> list[str]:
        """The secrets of this instance to verify with, current first."""
        return self.clerk.signing_secrets()

    def clerk_key(self) -> str:
        return self.clerk.key()

    def clerk_requests_per_10s(self) -> int:
        """Our share of Clerk's per-instance limit: 1000/10 s live, 100/10 s development."""
        if self.clerk.max_requests_per_10s is not None:
            return self.clerk.max_requests_per_10s
        limit = 1000 if self.clerk_key().startswith("sk_live_") else 100
        return max(1, int(limit * self.reconcile.rate_share))


def setting_fields(model: type[Settings] | None = None) -> list[Setting]:
    """Every setting with its variable, in declaration order, each group walked into."""
    found: list[Setting] = []
    for name, info in (model or Settings).model_fields.items():
        if name == "instance_environ":
            continue  # read under other names (CLERK_<NAME>_...): see instance_variable
        if name in GROUPS:
            found += [
                Setting(_variable(field, sub), name, field, sub)
                for field, sub in GROUPS[name].model_fields.items()
            ]
        else:
            found.append(Setting(_variable(name, info), None, name, info))
    return found


_SETTINGS = setting_fields()
_BY_NAME = {setting.variable.lower(): setting for setting in _SETTINGS}
_BY_VARIABLE = {setting.variable: setting for setting in _SETTINGS}


def setting(variable: str) -> Setting:
    """The setting read from `variable` (DATABASE_URL, ...)."""
    return _BY_VARIABLE[variable.upper()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process."""
    try:
        return Settings()
    except ValidationError as exc:
        # Name the variables but never echo their values: one of them may be a secret.
        problems = "; ".join(f"{_loc_variable(err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from None


def _loc_variable(loc: tuple[int | str, ...]) -> str:
    """The variable an error's location names: a group's field by its own variable."""
    if len(loc) >= 2 and loc[0] in GROUPS:
        return str(loc[1]).upper()
    return ".".join(str(p) for p in loc).upper()


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
    """Every setting's environment variable -> its place in Settings (`reconcile.page_size`;
    CLERK_<NAME>_... of the named instances are not fields: see instance_variable)."""
    return {setting.variable: setting.path for setting in _SETTINGS}


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
