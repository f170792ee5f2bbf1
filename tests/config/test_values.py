"""Single values: the API URL is https (or http to this machine), a blank secret is unset, a
signing secret is whsec_ and base64 of enough bytes; a refusal names the variable, never the
value."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.config.settings import Settings
from service.config.values import MIN_SIGNING_KEY_BYTES, ConfigError, checked_signing_secret


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


def test_a_blank_signing_secret_is_unset_and_serve_refuses_to_start() -> None:
    settings = Settings(clerk_webhook_signing_secret="   ")
    assert settings.clerk.webhook_signing_secret is None
    with pytest.raises(ConfigError, match="CLERK_WEBHOOK_SIGNING_SECRET"):
        settings.signing_secrets()


def test_a_signing_secret_is_whsec_and_base64_of_enough_bytes() -> None:
    good = "whsec_" + "A" * 32  # base64 of 24 bytes
    assert checked_signing_secret(good, "CLERK_WEBHOOK_SIGNING_SECRET") == good
    assert checked_signing_secret("A" * 32, "X") == "A" * 32  # the whsec_ prefix is optional
    with pytest.raises(ConfigError, match="CLERK_X is not a signing secret") as refused:
        checked_signing_secret("whsec_not base64!", "CLERK_X")
    assert "not base64" not in str(refused.value)
    short = "whsec_" + "A" * (MIN_SIGNING_KEY_BYTES // 3 * 4 - 4)
    with pytest.raises(ConfigError, match="CLERK_X is too short"):
        checked_signing_secret(short, "CLERK_X")
