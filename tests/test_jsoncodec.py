"""The fast JSON codec accepts what Clerk may send that orjson alone refuses."""

from __future__ import annotations

import json

import pytest

from service import jsoncodec


def test_round_trips_ordinary_json() -> None:
    value = {"id": "user_1", "n": 3, "ok": True, "meta": {"plan": ["a", None, 1.5]}}
    assert jsoncodec.loads(jsoncodec.dumps(value)) == value
    assert jsoncodec.loads(b'{"a": "\\u00e9"}') == {"a": "é"}


def test_integers_beyond_64_bits_survive_both_ways() -> None:
    # Metadata is free-form: a customer may store a 30-digit number.
    big = 123456789012345678901234567890
    assert jsoncodec.loads(f'{{"n": {big}}}') == {"n": big}
    assert jsoncodec.loads(jsoncodec.dumps({"n": big})) == {"n": big}


def test_what_orjson_refuses_still_parses() -> None:
    assert jsoncodec.loads('{"x": NaN}')["x"] != 0  # NaN != anything, but it parsed


def test_a_long_digit_run_outside_a_number_is_only_a_false_alarm() -> None:
    assert jsoncodec.loads(b'{"phone": "12345678901234567890", "n": 1}') == {
        "phone": "12345678901234567890",
        "n": 1,
    }
    # 19 digits exactly: still a 64-bit integer, parsed without loss either way.
    assert jsoncodec.loads(b'{"n": 9223372036854775807}') == {"n": 9223372036854775807}


def test_bytes_are_utf8_only() -> None:
    # Valid UTF-8 with NULs, which json.loads(bytes) would read as UTF-16 and accept as {}.
    with pytest.raises(json.JSONDecodeError):
        jsoncodec.loads(b"{\x00}\x00")
    with pytest.raises(UnicodeDecodeError):
        jsoncodec.loads(b'{"a": "\xff"}')


def test_without_exact_integers_long_numbers_may_blur_but_everything_still_parses() -> None:
    big = 123456789012345678901234567890
    assert jsoncodec.loads(f'{{"n": {big}}}', exact_integers=False)["n"] == float(big)
    assert jsoncodec.loads(b'{"x": NaN, "n": 1}', exact_integers=False)["n"] == 1
    with pytest.raises(json.JSONDecodeError):
        jsoncodec.loads(b"{\x00}\x00", exact_integers=False)
