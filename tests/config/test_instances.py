"""Clerk instances: one unless CLERK_INSTANCES names several, each reading its own variables
(checked, named, never echoed), with an optional instance id that is one name's only; the
request budget follows the key."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.config.instances import instance_variable, webhook_path
from service.config.settings import Settings, get_settings
from service.config.values import ConfigError


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


def test_requests_per_10s_follow_the_key_and_the_share() -> None:
    live = Settings(clerk_secret_key="sk_live_x", reconcile_rate_share=0.5)
    assert live.clerk_requests_per_10s() == 500
    development = Settings(clerk_secret_key="sk_test_x", reconcile_rate_share=0.5)
    assert development.clerk_requests_per_10s() == 50
    fixed = Settings(clerk_secret_key="sk_live_x", reconcile_max_requests_per_10s=7)
    assert fixed.clerk_requests_per_10s() == 7


def test_each_instance_has_its_variables_and_its_endpoint() -> None:
    assert instance_variable("default", "SECRET_KEY") == "CLERK_SECRET_KEY"
    assert instance_variable("default", "MAX_REQUESTS_PER_10S") == "RECONCILE_MAX_REQUESTS_PER_10S"
    assert instance_variable("prod", "SECRET_KEY") == "CLERK_PROD_SECRET_KEY"
    assert instance_variable("prod", "MAX_REQUESTS_PER_10S") == "CLERK_PROD_MAX_REQUESTS_PER_10S"
    assert (webhook_path("default"), webhook_path("prod")) == (
        "/webhooks/clerk",
        "/webhooks/clerk/prod",
    )
