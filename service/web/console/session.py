"""The console's door: the token (CONSOLE_TOKEN) checked in constant time, session cookies
signed with a key derived from it, and the origin check every action passes.

A cookie is `<expiry>.<nonce>.<mac>`: HMAC-SHA256 over the expiry and nonce with a key
derived from the token, so every `serve` process with the same token accepts every other's
cookies, and changing the token logs everyone out. Nothing in it names the operator.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request

from service.config import ConfigError, Settings

COOKIE = "clerk_replica_console"
MIN_TOKEN_LENGTH = 16
_KEY_LABEL = b"clerk-replica console session v1"


@dataclass(frozen=True)
class Door:
    """What the console checks a login and a session against."""

    token: bytes
    key: bytes
    session_seconds: float

    def token_matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self.token)

    def new_cookie(self, now: float | None = None) -> str:
        expiry = int((time.time() if now is None else now) + self.session_seconds)
        payload = f"{expiry}.{secrets.token_urlsafe(12)}"
        return f"{payload}.{self._mac(payload)}"

    def valid(self, cookie: str | None, now: float | None = None) -> bool:
        if not cookie or cookie.count(".") != 2:
            return False
        payload, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(payload)):
            return False
        expiry = payload.split(".", 1)[0]
        return expiry.isdigit() and int(expiry) > (time.time() if now is None else now)

    def _mac(self, payload: str) -> str:
        return hmac.new(self.key, payload.encode(), hashlib.sha256).hexdigest()


def door_of(settings: Settings) -> Door | None:
    """The console's door, or None when CONSOLE_TOKEN is unset (no console). A token shorter
    than MIN_TOKEN_LENGTH is a ConfigError naming the variable, never the value."""
    if settings.console.token is None:
        return None
    token = settings.console.token.get_secret_value().strip()
    if not token:
        return None
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"CONSOLE_TOKEN is too short: use at least {MIN_TOKEN_LENGTH} characters "
            "(for example: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    key = hmac.new(token.encode(), _KEY_LABEL, hashlib.sha256).digest()
    return Door(token.encode(), key, settings.console.session_hours * 3600)


def same_origin(request: Request) -> bool:
    """The request's Origin (or, without one, its Referer) names the host it was sent to: a
    form posted from another site, or with neither header, is refused."""
    host = request.headers.get("host")
    source = request.headers.get("origin") or request.headers.get("referer")
    if not host or not source or source == "null":
        return False
    given = urlsplit(source)
    return given.scheme in ("http", "https") and given.netloc.lower() == host.lower()
