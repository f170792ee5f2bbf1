"""The payload bounds: depth counted without recursion at any depth, the text checks never
miss what the walks would find, NUL dropped from strings and keys at any depth."""

from __future__ import annotations

from typing import Any

import pytest

from service import jsoncodec
from service.clerk import bounds
from service.clerk.payloads import PayloadError
from service.clerk.rows import without_private


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("levels", [1, 2, bounds.MAX_DEPTH, 1023])
def test_depth_counts_levels_at_any_depth(levels: int) -> None:
    value = jsoncodec.loads(nested(levels))
    assert bounds.depth(value) == levels
    assert bounds.depth({"a": 1, "b": [value]}) == levels + 2


def test_the_text_check_never_misses_a_deep_value() -> None:
    assert not bounds.may_be_too_deep(nested(bounds.MAX_DEPTH))
    assert bounds.may_be_too_deep(nested(bounds.MAX_DEPTH + 1))
    assert bounds.may_be_too_deep(nested(bounds.MAX_DEPTH + 1).encode())


def test_redaction_refuses_past_the_bound_never_the_stack() -> None:
    ok = jsoncodec.loads('{"a":' * (bounds.MAX_DEPTH - 1) + '{"private_metadata":1}' + "}" * 255)
    redacted = without_private(ok)
    assert bounds.depth(redacted) == bounds.MAX_DEPTH
    assert "private_metadata" not in jsoncodec.dumps(redacted)
    for levels in (bounds.MAX_DEPTH + 1, 900, 1023):
        with pytest.raises(PayloadError, match="levels deep"):
            without_private({"a": jsoncodec.loads(nested(levels - 1))})


def test_nul_goes_from_every_string_and_key() -> None:
    value: Any = jsoncodec.loads('{"k\\u0000": ["\\u0000v", {"\\u0000": "x\\u0000"}], "n": 1}')
    assert bounds.may_hold_nul('"\\u0000"') and not bounds.may_hold_nul('"x"')
    assert bounds.strip_nul(value) == {"k": ["v", {"": "x"}], "n": 1}
    deep: Any = jsoncodec.loads("[" * 1000 + '"\\u0000"' + "]" * 1000)
    bounds.strip_nul(deep)
    while isinstance(deep, list):
        deep = deep[0]
    assert deep == ""
