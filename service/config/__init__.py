"""Settings from the environment: the only part that reads environment variables.

What this install is configured with, in groups by area (settings.reconcile.page_size), each
setting read from its own flat variable (RECONCILE_PAGE_SIZE); the variables each named Clerk
instance has of its own (CLERK_INSTANCES) and how they stand in for the single-instance ones.
Tuning knobs are marked ADVANCED: their defaults suit nearly every install. One module per
concept: values (single values and ConfigError), areas (one model per area), instances,
settings (Settings, its environment source, get_settings), lookalikes (misspelt variables).
"""

from service.config.areas import (
    ADVANCED,
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
    instance_variable,
    webhook_path,
)
from service.config.lookalikes import CLERK_SDK_VARIABLES, lookalike_variables
from service.config.settings import (
    GROUPS,
    Setting,
    Settings,
    get_settings,
    setting,
    setting_fields,
    setting_variables,
)
from service.config.values import (
    MIN_SIGNING_KEY_BYTES,
    ConfigError,
    checked_signing_secret,
    https_unless_loopback,
    masked_url,
)

__all__ = [
    "ADVANCED",
    "CLERK_SDK_VARIABLES",
    "DEFAULT_INSTANCE",
    "GROUPS",
    "INSTANCE_VARIABLES",
    "MIN_SIGNING_KEY_BYTES",
    "ConfigError",
    "ConsoleSettings",
    "DatabaseSettings",
    "DevSettings",
    "InboxSettings",
    "IngestSettings",
    "InstanceSettings",
    "LogSettings",
    "MetricsSettings",
    "ReconcileSettings",
    "RedisSettings",
    "Setting",
    "Settings",
    "WebSettings",
    "WorkerSettings",
    "checked_signing_secret",
    "get_settings",
    "https_unless_loopback",
    "instance_variable",
    "lookalike_variables",
    "masked_url",
    "setting",
    "setting_fields",
    "setting_variables",
    "webhook_path",
]
