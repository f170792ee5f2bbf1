"""`clerk-replica config`: every setting by its variable with its source, secrets masked (the
secret settings, passwords and tokens inside URLs), the named instances' variables too."""

from __future__ import annotations

import json

import pytest

from service.config import Settings, setting_variables
from service.operate.config_view import (
    MASK,
    config_json,
    config_text,
    instance_settings,
    mask_url,
    settings_in_effect,
)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:///./clerk-replica.db", "sqlite:///./clerk-replica.db"),
        ("postgresql://app:S3cret@db:5432/app", f"postgresql://app:{MASK}@db:5432/app"),
        ("redis://:S3cret@r:6379/0", f"redis://:{MASK}@r:6379/0"),
        ("rediss://default:p%40S3cret@x.example:6379", f"rediss://default:{MASK}@x.example:6379"),
        (
            "postgres://u@h/d?sslmode=require&password=S3cret",
            f"postgres://u@h/d?sslmode=require&password={MASK}",
        ),
        ("https://h/v1?api_token=S3cret&x=1", f"https://h/v1?api_token={MASK}&x=1"),
        ("https://api.clerk.com/v1", "https://api.clerk.com/v1"),
        ("http://[::1:broken", MASK),
    ],
)
def test_urls_show_everything_but_their_secrets(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_every_setting_is_shown_with_its_source_and_description(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORKER_CONCURRENCY", "3")
    shown = {row.variable: row for row in settings_in_effect(Settings())}
    assert list(shown) == list(setting_variables())
    assert (shown["WORKER_CONCURRENCY"].value, shown["WORKER_CONCURRENCY"].source) == (
        3,
        "environment",
    )
    assert (shown["PORT"].value, shown["PORT"].source) == (8000, "default")
    assert all(row.description for row in shown.values())


def test_secrets_show_their_kind_only(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "CLERK_WEBHOOK_SIGNING_SECRET": "whsec_S3cretS3cret",
        "CLERK_SECRET_KEY": "sk_live_S3cretS3cret",
        "METRICS_TOKEN": "S3cretS3cret",
        "DATABASE_URL": "postgresql://app:S3cretS3cret@db/app",
        "CLERK_INSTANCES": "prod",
        "CLERK_PROD_SECRET_KEY": "sk_test_S3cretS3cret",
        "CLERK_PROD_WEBHOOK_SIGNING_SECRET": "whsec_S3cretS3cret",
    }
    for variable, value in secrets.items():
        monkeypatch.setenv(variable, value)
    settings = Settings()
    text, as_json = config_text(settings), config_json(settings)
    for output in (text, as_json):
        assert "S3cretS3cret" not in output
    found = json.loads(as_json)
    assert found["settings"]["CLERK_WEBHOOK_SIGNING_SECRET"]["value"] == f"whsec_{MASK}"
    assert found["settings"]["CLERK_SECRET_KEY"]["value"] == f"sk_live_{MASK}"
    assert found["settings"]["METRICS_TOKEN"]["value"] == MASK
    assert found["instances"]["prod"]["CLERK_PROD_SECRET_KEY"] == {
        "value": f"sk_test_{MASK}",
        "source": "environment",
        "description": "",
    }


def test_each_instance_shows_what_it_sets_and_what_it_inherits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLERK_INSTANCES", "prod,staging")
    monkeypatch.setenv("CLERK_API_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("CLERK_STAGING_API_URL", "http://127.0.0.2:9/v1")
    shown = {
        name: {row.variable: (row.value, row.source) for row in rows}
        for name, rows in instance_settings(Settings()).items()
    }
    assert list(shown) == ["prod", "staging"]
    assert shown["prod"]["CLERK_PROD_API_URL"] == (
        "http://127.0.0.1:9/v1",
        "inherited from CLERK_API_URL",
    )
    assert shown["staging"]["CLERK_STAGING_API_URL"] == ("http://127.0.0.2:9/v1", "environment")
    assert shown["staging"]["CLERK_STAGING_SECRET_KEY"] == (None, "default")
    assert "instance staging (CLERK_INSTANCES)" in config_text(Settings())
