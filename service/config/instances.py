"""Clerk instances: their names (CLERK_INSTANCES), the variables each has of its own
(CLERK_<NAME>_<SUFFIX>, the single-instance ones for the default instance) and InstanceSettings,
the one model that checks them; building a named instance from its variables."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, ValidationError, field_validator

from service.config.areas import ADVANCED, area
from service.config.values import (
    ConfigError,
    blank_is_unset,
    checked_signing_secret,
    https_unless_loopback,
)

# The instance the single-instance variables describe (CLERK_WEBHOOK_SIGNING_SECRET, ...).
DEFAULT_INSTANCE = "default"
# What CLERK_INSTANCES may name: a-z, 0-9 and _, starting with a letter, at most 32.
INSTANCE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
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


def webhook_path(instance: str) -> str:
    """Where Clerk delivers an instance's events: the plain path for the default instance."""
    return "/webhooks/clerk" if instance == DEFAULT_INSTANCE else f"/webhooks/clerk/{instance}"


def instance_variable(name: str, suffix: str) -> str:
    """The environment variable holding `suffix` (a key of INSTANCE_VARIABLES) for instance
    `name`: CLERK_PROD_SECRET_KEY, or the single-instance CLERK_SECRET_KEY for the default."""
    if name == DEFAULT_INSTANCE:
        return f"CLERK_{suffix}" if suffix != "MAX_REQUESTS_PER_10S" else f"RECONCILE_{suffix}"
    return f"CLERK_{name.upper()}_{suffix}"


class InstanceSettings(BaseModel):
    """One Clerk instance's own variables: the single-instance ones (CLERK_SECRET_KEY, ...) for
    the default instance, CLERK_<NAME>_... for a named one; checked by this one model."""

    model_config = area("clerk_", "Clerk instances")

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


def instance_names(clerk_instances: str, single: InstanceSettings) -> list[str]:
    """The instances an install keeps: the ones `clerk_instances` (CLERK_INSTANCES) names, with
    the default one first when its own variables (`single`) are set too, or the default alone."""
    named: list[str] = []
    for raw_name in clerk_instances.split(","):
        name = raw_name.strip().lower()
        if not name:
            continue
        if not INSTANCE_NAME.match(name) or name == DEFAULT_INSTANCE:
            raise ConfigError(
                f"CLERK_INSTANCES: {name!r} is not an instance name (a-z, 0-9 and _, "
                f"starting with a letter, at most 32; {DEFAULT_INSTANCE!r} is reserved)"
            )
        if name not in named:
            named.append(name)
    if not named:
        return [DEFAULT_INSTANCE]
    has_own = single.webhook_signing_secret is not None or single.secret_key is not None
    return [DEFAULT_INSTANCE, *named] if has_own else named


def named_instance(
    name: str, environ: Mapping[str, str], single: InstanceSettings
) -> InstanceSettings:
    """Instance `name`'s own variables from `environ` (upper-case keys), checked; what it does
    not set itself is the single-instance value (`single`), except its secrets, key and id."""
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
