"""Single values: what a URL, a secret or a signing secret must be, and ConfigError, the refusal
that names the variable and never the value; a URL made fit to print."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from urllib.parse import urlsplit

from pydantic import SecretStr


class ConfigError(RuntimeError):
    """A setting is missing or unusable; the message names the variable."""


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


def masked_url(url: str) -> str:
    """A database or Redis URL fit to print: its password (if any) replaced by ***."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparsable URL)"
