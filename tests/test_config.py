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
    assert Settings(clerk_api_url=url).clerk_api_url == url


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
    assert settings.clerk_webhook_signing_secret is None
    with pytest.raises(ConfigError, match="CLERK_WEBHOOK_SIGNING_SECRET"):
        settings.signing_secrets()


def test_metrics_stay_on_the_main_port_unless_metrics_port_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("METRICS_PORT", "METRICS_HOST"):
        monkeypatch.delenv(name, raising=False)
    default = Settings()
    assert (default.metrics_port, default.metrics_host) == (None, "127.0.0.1")
    monkeypatch.setenv("METRICS_PORT", "9090")
    monkeypatch.setenv("METRICS_HOST", "0.0.0.0")
    configured = Settings()
    assert (configured.metrics_port, configured.metrics_host) == (9090, "0.0.0.0")
    for refused in ("0", "65536", "nine"):
        with pytest.raises(ValidationError, match="metrics_port"):
            Settings(metrics_port=refused)
