"""Settings: what this install is configured with, in groups by area
(settings.reconcile.page_size), each setting read from its own flat variable
(RECONCILE_PAGE_SIZE) by the environment source; each setting found by its variable; the
settings as each Clerk instance sees them; get_settings, read once per process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from service.config.areas import (
    ConsoleSettings,
    DatabaseSettings,
    DevSettings,
    InboxSettings,
    IngestSettings,
    LogSettings,
    MetricsSettings,
    ReconcileSettings,
    RedisSettings,
    WebSettings,
    WorkerSettings,
)
from service.config.instances import (
    DEFAULT_INSTANCE,
    INSTANCE_VARIABLES,
    InstanceSettings,
    instance_names,
    instance_variable,
    named_instance,
)
from service.config.values import ConfigError

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
        return instance_names(self.clerk_instances, self._default_instance())

    def _default_instance(self) -> InstanceSettings:
        """The single-instance variables, also in a named instance's copy of these settings."""
        return self.clerk if self._single is None else self._single

    def _instance_settings(self, name: str) -> InstanceSettings:
        """Instance `name`'s own variables, checked (see named_instance)."""
        environ = {k.upper(): v.get_secret_value() for k, v in self.instance_environ.items()}
        return named_instance(name, environ, self._default_instance())

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


def setting_variables() -> dict[str, str]:
    """Every setting's environment variable -> its place in Settings (`reconcile.page_size`;
    CLERK_<NAME>_... of the named instances are not fields: see instance_variable)."""
    return {setting.variable: setting.path for setting in _SETTINGS}


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
