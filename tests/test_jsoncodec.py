"""The fast JSON codec accepts what Clerk may send that orjson alone refuses."""

from __future__ import annotations

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
