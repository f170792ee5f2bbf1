"""The console's door: tokens, signed cookies, the origin check."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from starlette.requests import Request

from service.config import ConfigError
from service.web.console.session import MIN_TOKEN_LENGTH, Door, door_of, same_origin
from tests.support.settings import make_settings

TOKEN = "a-console-token-long-enough"


def door(token: str = TOKEN, hours: float = 1.0) -> Door:
    found = door_of(
        make_settings(
            "sqlite:///unused.db",
            "redis://unused",
            console_token=token,
            console_session_hours=hours,
        )
    )
    assert found is not None
    return found


def test_no_token_no_console_and_a_short_one_is_refused_without_its_value() -> None:
    assert door_of(make_settings("sqlite:///x.db", "redis://x")) is None
    assert door_of(make_settings("sqlite:///x.db", "redis://x", console_token="   ")) is None
    short = "s" * (MIN_TOKEN_LENGTH - 1)
    with pytest.raises(ConfigError) as refused:
        door_of(make_settings("sqlite:///x.db", "redis://x", console_token=short))
    assert "CONSOLE_TOKEN" in str(refused.value) and short not in str(refused.value)
    assert door_of(make_settings("sqlite:///x.db", "redis://x", console_token=SecretStr("s" * 16)))


def test_the_token_is_compared_whole() -> None:
    one = door()
    assert one.token_matches(TOKEN)
    for wrong in ("", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "é" * 20):
        assert not one.token_matches(wrong)


def test_cookies_are_signed_expire_and_outlive_the_process_not_the_token() -> None:
    one = door(hours=1)
    cookie = one.new_cookie(now=1000.0)
    assert one.valid(cookie, now=1000.0 + 3599)
    assert not one.valid(cookie, now=1000.0 + 3601)
    assert door(hours=1).valid(cookie, now=1001.0)  # another process, same token
    assert not door("another-console-token-xyz").valid(cookie, now=1001.0)
    expiry, nonce, mac = cookie.split(".")
    assert not one.valid(f"{int(expiry) + 9999}.{nonce}.{mac}", now=1001.0)  # extended
    flipped = mac[:-1] + ("1" if mac[-1] == "0" else "0")
    assert not one.valid(f"{expiry}.{nonce}.{flipped}", now=1001.0)
    for junk in (None, "", "abc", "1.2", "a.b.c.d", f"x{expiry}.{nonce}.{mac}"):
        assert not one.valid(junk, now=1001.0)
    assert TOKEN not in cookie


def request(headers: dict[str, str]) -> Request:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "headers": raw, "path": "/"})


@pytest.mark.parametrize(
    ("headers", "same"),
    [
        ({"host": "ops.example:8443", "origin": "https://ops.example:8443"}, True),
        ({"host": "ops.example", "referer": "http://ops.example/console/"}, True),
        ({"host": "OPS.example", "origin": "http://ops.EXAMPLE"}, True),
        ({"host": "ops.example", "origin": "https://evil.example"}, False),
        ({"host": "ops.example", "origin": "https://ops.example.evil.example"}, False),
        ({"host": "ops.example:8443", "origin": "https://ops.example"}, False),
        ({"host": "ops.example", "referer": "https://evil.example/?ops.example"}, False),
        ({"host": "ops.example", "origin": "null"}, False),
        ({"host": "ops.example", "origin": "javascript://ops.example"}, False),
        ({"host": "ops.example"}, False),
        ({"origin": "http://ops.example"}, False),
    ],
)
def test_same_origin(headers: dict[str, str], same: bool) -> None:
    assert same_origin(request(headers)) is same
