"""Settings from the environment: defaults that work on one machine, each setting read from its
own flat variable into its group, found by its variable, values checked with a message that
names the variable and never echoes a secret."""

from __future__ import annotations

import pytest

from service.config.settings import Settings, get_settings, setting, setting_variables
from service.config.values import ConfigError


def test_invalid_settings_name_the_variable_not_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLERK_API_URL", "http://secret-host.internal/v1")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError) as refused:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert "CLERK_API_URL" in str(refused.value)
    assert "secret-host" not in str(refused.value)


def test_every_setting_has_a_description() -> None:
    missing = [v for v in setting_variables() if not setting(v).info.description]
    assert missing == []


# Every variable a deployment may set: grouping the settings renamed none of them.
VARIABLES = frozenset(
    {
        "CHANGES_RETENTION_DAYS",
        "CHANGE_FEED",
        "CLERK_API_URL",
        "CLERK_API_VERSION",
        "CLERK_FDW_SCHEMA",
        "CLERK_INSTANCES",
        "CLERK_INSTANCE_ID",
        "CLERK_SECRET_KEY",
        "CLERK_WEBHOOK_SIGNING_SECRET",
        "CLERK_WEBHOOK_SIGNING_SECRET_PREVIOUS",
        "CONSOLE_SESSION_HOURS",
        "CONSOLE_STALE_DELIVERY_HOURS",
        "CONSOLE_STALE_RECONCILE_HOURS",
        "CONSOLE_TOKEN",
        "DATABASE_URL",
        "DB_CONNECT_TIMEOUT_SECONDS",
        "DB_POOL_SIZE",
        "DEV_STATE_DIR",
        "ERASE_DELETED_USERS",
        "HOST",
        "INBOX_BODY_RETENTION_HOURS",
        "INBOX_FAILED_RETENTION_DAYS",
        "INBOX_ROW_RETENTION_DAYS",
        "INGEST_DB_TIMEOUT_SECONDS",
        "INGEST_MAX_WAITING",
        "LOG_FORMAT",
        "LOG_LEVEL",
        "METRICS_CACHE_SECONDS",
        "METRICS_HOST",
        "METRICS_PORT",
        "METRICS_TOKEN",
        "PORT",
        "QUEUE_PREFIX",
        "RECONCILE_CONCURRENCY",
        "RECONCILE_CONFIRM_DELETIONS",
        "RECONCILE_CRON_HOURS",
        "RECONCILE_CRON_MINUTE",
        "RECONCILE_DELETE_FLOOR",
        "RECONCILE_FULL_EVERY_DAYS",
        "RECONCILE_FULL_WHEN_DIFFERING_SHARE",
        "RECONCILE_LOCK_TTL_SECONDS",
        "RECONCILE_MAX_ATTEMPTS",
        "RECONCILE_MAX_DELETE_SHARE",
        "RECONCILE_MAX_REQUESTS_PER_10S",
        "RECONCILE_MAX_RESPONSE_BYTES",
        "RECONCILE_PAGE_SIZE",
        "RECONCILE_RATE_SHARE",
        "RECONCILE_SINCE_MARGIN_SECONDS",
        "RECONCILE_TIMEOUT_SECONDS",
        "REDIS_TIMEOUT_SECONDS",
        "REDIS_URL",
        "REPLICA_SCHEMA",
        "STORE_PRIVATE_METADATA",
        "SWEEP_BATCH_SIZE",
        "SWEEP_GRACE_SECONDS",
        "SWEEP_INTERVAL_SECONDS",
        "WEBHOOK_MAX_BODY_BYTES",
        "WEBHOOK_READ_TIMEOUT_SECONDS",
        "WORKER_BATCH_SIZE",
        "WORKER_BATCH_STREAMS",
        "WORKER_CONCURRENCY",
        "WORKER_HEARTBEAT_SECONDS",
        "WORKER_JOB_TIMEOUT_SECONDS",
        "WORKER_MAX_EVENT_ATTEMPTS",
        "WORKER_MAX_TRIES",
        "WORKER_METRICS_HOST",
        "WORKER_METRICS_PORT",
        "WORKER_POLL_DELAY_SECONDS",
        "WORKER_WAKE_WINDOW_MS",
    }
)


def test_the_variables_keep_their_names() -> None:
    assert set(setting_variables()) == VARIABLES


def test_each_setting_reads_its_own_flat_variable_into_its_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    given = {
        "RECONCILE_PAGE_SIZE": "7",
        "WEBHOOK_MAX_BODY_BYTES": "2048",
        "CLERK_API_VERSION": "2025-01-01",
        "SWEEP_GRACE_SECONDS": "5",
        "DB_POOL_SIZE": "3",
        "HOST": "0.0.0.0",
        "queue_prefix": "lower-case-too",
    }
    for variable, value in given.items():
        monkeypatch.setenv(variable, value)
    settings = Settings()
    assert settings.reconcile.page_size == 7
    assert settings.ingest.max_body_bytes == 2048
    assert settings.reconcile.api_version == "2025-01-01"
    assert settings.inbox.sweep_grace_seconds == 5
    assert settings.database.pool_size == 3
    assert settings.web.host == "0.0.0.0"
    assert settings.redis.queue_prefix == "lower-case-too"
    assert settings.is_set("RECONCILE_PAGE_SIZE") and not settings.is_set("WORKER_CONCURRENCY")
    # A keyword, spelt as the variable, wins over the environment.
    assert Settings(reconcile_page_size=3).reconcile.page_size == 3
    monkeypatch.setenv("WORKER_BATCH_SIZE", "0")
    with pytest.raises(ConfigError, match="WORKER_BATCH_SIZE") as refused:
        get_settings.__wrapped__()
    assert "worker" not in str(refused.value).replace("WORKER_BATCH_SIZE", "")


def test_updated_changes_only_what_it_names() -> None:
    settings = Settings(clerk_secret_key="sk_test_x", reconcile_concurrency=2)
    changed = settings.updated(reconcile_page_size=5, clerk_api_url="http://127.0.0.1:1/v1")
    assert (changed.reconcile.page_size, changed.reconcile.concurrency) == (5, 2)
    assert changed.clerk.api_url == "http://127.0.0.1:1/v1" and changed.clerk_key() == "sk_test_x"
    assert (settings.reconcile.page_size, settings.clerk.api_url) == (
        500,
        "https://api.clerk.com/v1",
    )
    with pytest.raises(TypeError, match="reconcile_pagesize"):
        settings.updated(reconcile_pagesize=5)
