"""Settings from the environment: defaults that work on one machine, values checked with a
message that names the variable and never echoes a secret."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.config import ConfigError, Settings, get_settings


@pytest.mark.parametrize(
    "url",
    [
        "https://api.clerk.com/v1",
        "http://127.0.0.1:8080/v1",
        "http://127.5.5.5/v1",
        "http://[::1]:9000/v1",
        "http://localhost:8080/v1",
    ],
)
def test_the_api_url_is_https_or_loopback(url: str) -> None:
    assert Settings(clerk_api_url=url).clerk.api_url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://api.clerk.com/v1",
        "http://10.0.0.5/v1",
        "http://localhost.evil.example/v1",
        "ftp://api.clerk.com/v1",
        "api.clerk.com/v1",
        "https:///v1",
    ],
)
def test_a_plain_http_api_url_elsewhere_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="https://"):
        Settings(clerk_api_url=url)


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


def test_requests_per_10s_follow_the_key_and_the_share() -> None:
    live = Settings(clerk_secret_key="sk_live_x", reconcile_rate_share=0.5)
    assert live.clerk_requests_per_10s() == 500
    development = Settings(clerk_secret_key="sk_test_x", reconcile_rate_share=0.5)
    assert development.clerk_requests_per_10s() == 50
    fixed = Settings(clerk_secret_key="sk_live_x", reconcile_max_requests_per_10s=7)
    assert fixed.clerk_requests_per_10s() == 7


def test_a_blank_signing_secret_is_unset_and_serve_refuses_to_start() -> None:
    settings = Settings(clerk_webhook_signing_secret="   ")
    assert settings.clerk.webhook_signing_secret is None
    with pytest.raises(ConfigError, match="CLERK_WEBHOOK_SIGNING_SECRET"):
        settings.signing_secrets()


def test_metrics_stay_on_the_main_port_unless_metrics_port_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("METRICS_PORT", "METRICS_HOST"):
        monkeypatch.delenv(name, raising=False)
    default = Settings()
    assert (default.metrics.port, default.metrics.host) == (None, "127.0.0.1")
    monkeypatch.setenv("METRICS_PORT", "9090")
    monkeypatch.setenv("METRICS_HOST", "0.0.0.0")
    configured = Settings()
    assert (configured.metrics.port, configured.metrics.host) == (9090, "0.0.0.0")
    for refused in ("0", "65536", "nine"):
        with pytest.raises(ValidationError, match="metrics_port"):
            Settings(metrics_port=refused)


def test_one_instance_unless_clerk_instances_names_several() -> None:
    assert Settings().instance_names() == ["default"]
    assert Settings().for_instance("default").instance_name == "default"
    assert Settings(clerk_instances=" Prod, staging,prod ").instance_names() == ["prod", "staging"]
    # The single-instance variables set beside named ones keep the default instance too.
    both = Settings(clerk_instances="prod", clerk_secret_key="sk_test_x")
    assert both.instance_names() == ["default", "prod"]


@pytest.mark.parametrize("names", ["default", "1prod", "pro-d", "a" * 33, "prod,Bad Name"])
def test_an_instance_name_that_cannot_be_one_is_refused(names: str) -> None:
    with pytest.raises(ConfigError, match="CLERK_INSTANCES"):
        Settings(clerk_instances=names).instance_names()


def test_each_named_instance_reads_its_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_INSTANCES", "prod,staging")
    monkeypatch.setenv(
        "CLERK_PROD_WEBHOOK_SIGNING_SECRET", "whsec_YfdGhouM9GUqKEKRfOZ0aR7gXsw6AcBK"
    )
    monkeypatch.setenv("CLERK_PROD_SECRET_KEY", "sk_live_prod")
    monkeypatch.setenv(
        "CLERK_STAGING_WEBHOOK_SIGNING_SECRET", "whsec_JoKd8LnPVlLwOF0ahh9vpcOD8egmFony"
    )
    monkeypatch.setenv(
        "CLERK_STAGING_WEBHOOK_SIGNING_SECRET_PREVIOUS", "whsec_iA+3WwtJXmoCerYOdSdW+dMwP8tCmEnT"
    )
    monkeypatch.setenv("CLERK_STAGING_API_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("CLERK_STAGING_MAX_REQUESTS_PER_10S", "7")
    monkeypatch.setenv("CLERK_API_URL", "https://clerk-proxy.example/v1")
    get_settings.cache_clear()
    try:
        settings = get_settings()
    finally:
        get_settings.cache_clear()
    prod, staging = settings.instances()
    assert (prod.instance_name, staging.instance_name) == ("prod", "staging")
    assert prod.signing_secrets() == ["whsec_YfdGhouM9GUqKEKRfOZ0aR7gXsw6AcBK"]
    assert staging.signing_secrets() == [
        "whsec_JoKd8LnPVlLwOF0ahh9vpcOD8egmFony",
        "whsec_iA+3WwtJXmoCerYOdSdW+dMwP8tCmEnT",
    ]
    assert prod.clerk_key() == "sk_live_prod" and prod.clerk_requests_per_10s() == 500
    # What an instance does not set itself is the single-instance value.
    assert prod.clerk.api_url == "https://clerk-proxy.example/v1"
    assert staging.clerk.api_url == "http://127.0.0.1:9/v1"
    assert staging.clerk_requests_per_10s() == 7
    # Never another instance's secrets, nor the single-instance ones.
    with pytest.raises(ConfigError, match="CLERK_STAGING_SECRET_KEY is not set"):
        staging.clerk_key()
    assert "whsec_YfdGhouM9GUqKEKRfOZ0aR7gXsw6AcBK" not in repr(settings)


def test_a_named_instance_missing_its_secret_names_its_variable() -> None:
    settings = Settings(
        clerk_instances="prod",
        clerk_webhook_signing_secret="whsec_c2luZ2xlc2luZ2xlc2luZ2xlc2luZ2xl",
    )
    with pytest.raises(ConfigError, match="CLERK_PROD_WEBHOOK_SIGNING_SECRET is not set"):
        settings.for_instance("prod").signing_secrets()
    with pytest.raises(ConfigError, match="unknown instance 'qa'"):
        settings.for_instance("qa")


def test_a_named_instance_variable_is_checked_and_named_not_echoed() -> None:
    settings = Settings(
        clerk_instances="prod", instance_environ={"CLERK_PROD_API_URL": "http://secret-host/v1"}
    )
    with pytest.raises(ConfigError) as refused:
        settings.for_instance("prod")
    assert "CLERK_PROD_API_URL" in str(refused.value)
    assert "secret-host" not in str(refused.value)


def test_every_setting_has_a_description() -> None:
    from service.config import setting, setting_variables

    missing = [v for v in setting_variables() if not setting(v).info.description]
    assert missing == []


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"CLERK_WEBHOOK_SIGNING_SECRT": "whsec_x"},
            [("CLERK_WEBHOOK_SIGNING_SECRT", "did you mean CLERK_WEBHOOK_SIGNING_SECRET?")],
        ),
        (
            {"CLERK_INSTANCES": "prod", "CLERK_PROD_SECRT_KEY": "sk_x"},
            [("CLERK_PROD_SECRT_KEY", "did you mean CLERK_PROD_SECRET_KEY?")],
        ),
        (
            {"CLERK_INSTANCES": "prod", "CLERK_PRDO_SECRET_KEY": "sk_x"},
            [("CLERK_PRDO_SECRET_KEY", "did you mean CLERK_PROD_SECRET_KEY?")],
        ),
        (
            {"CLERK_STAGING_SECRET_KEY": "sk_x"},
            [("CLERK_STAGING_SECRET_KEY", "CLERK_INSTANCES does not name an instance 'staging'")],
        ),
        (
            {"reconcile_cron_hour": "3"},
            [("RECONCILE_CRON_HOUR", "did you mean RECONCILE_CRON_HOURS?")],
        ),
        ({"WORKER_CONCURENCY": "3"}, [("WORKER_CONCURENCY", "did you mean WORKER_CONCURRENCY?")]),
        # Ours, of a named instance, of Clerk's SDKs, or of other tools: no warning.
        (
            {
                "CLERK_INSTANCES": "prod",
                "CLERK_PROD_SECRET_KEY": "sk_x",
                "CLERK_PROD_WEBHOOK_SIGNING_SECRET_PREVIOUS": "whsec_x",
                "CLERK_WEBHOOK_SIGNING_SECRET": "whsec_x",
                "clerk_secret_key": "sk_x",
                "CLERK_API_URL": "https://api.clerk.com/v1",
                "CLERK_PUBLISHABLE_KEY": "pk_x",
                "CLERK_JWT_KEY": "x",
                "CLERK_MACHINE_SECRET_KEY": "x",
                "CLERK_SIGN_IN_URL": "/sign-in",
                "NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY": "pk_x",
                "VITE_CLERK_PUBLISHABLE_KEY": "pk_x",
                "DATABASE_URL_UNPOOLED": "x",
                "REDIS_HOST": "x",
                "REDIS_PORT": "6379",
                "DB_PASSWORD": "x",
                "LOG_FILE": "x",
                "HOSTNAME": "x",
                "PORTS": "x",
            },
            [],
        ),
    ],
)
def test_a_variable_that_looks_like_ours_is_named_with_the_closest_real_one(
    environ: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    from service.config import lookalike_variables

    assert lookalike_variables(environ) == expected


def test_each_instance_may_name_its_clerk_instance_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_INSTANCES", "prod,staging")
    monkeypatch.setenv("CLERK_PROD_INSTANCE_ID", "ins_2prod")
    monkeypatch.setenv("CLERK_PROD_WEBHOOK_SIGNING_SECRET", "whsec_prodprodprod")
    get_settings.cache_clear()
    try:
        settings = get_settings()
    finally:
        get_settings.cache_clear()
    assert settings.instance_ids() == {"prod": "ins_2prod"}
    assert settings.for_instance("prod").instance_ids() == {"prod": "ins_2prod"}
    alone = Settings(clerk_instances="", clerk_instance_id="ins_1", instance_environ={})
    assert alone.instance_ids() == {"default": "ins_1"}
    assert Settings(clerk_instances="", instance_environ={}).instance_ids() == {}


def test_an_instance_id_is_one_name_s_and_looks_like_one() -> None:
    twice = Settings(
        clerk_instances="prod,staging",
        instance_environ={"CLERK_PROD_INSTANCE_ID": "ins_1", "CLERK_STAGING_INSTANCE_ID": "ins_1"},
    )
    with pytest.raises(ConfigError, match=r"CLERK_STAGING_INSTANCE_ID .* CLERK_PROD_INSTANCE_ID"):
        twice.instance_ids()
    bad = Settings(clerk_instances="prod", instance_environ={"CLERK_PROD_INSTANCE_ID": "prod"})
    with pytest.raises(ConfigError, match="CLERK_PROD_INSTANCE_ID"):
        bad.instance_ids()
    with pytest.raises(ValidationError, match="clerk_instance_id"):
        Settings(clerk_instance_id="user_1")


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
    from service.config import setting_variables

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


def test_tuning_knobs_are_marked_advanced() -> None:
    from service.config import setting

    knobs = ["RECONCILE_PAGE_SIZE", "WORKER_CONCURRENCY", "DB_POOL_SIZE", "WORKER_WAKE_WINDOW_MS"]
    assert all(setting(v).advanced for v in knobs)
    everyday = ["DATABASE_URL", "CLERK_SECRET_KEY", "RECONCILE_CRON_HOURS", "PORT"]
    assert not any(setting(v).advanced for v in everyday)
