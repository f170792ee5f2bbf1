"""Picking ingest's headers from ASGI's raw list: what Starlette's Headers would have said."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from service.ingest.refusals import Refusal
from service.ingest.signature import delivery_headers, pick_headers

RAW = [
    (b"host", b"example.org"),
    (b"svix-id", b"msg_first"),
    (b"svix-timestamp", b"1700000000"),
    (b"x-forwarded-for", b"192.0.2.1"),
    (b"svix-id", b"msg_second"),
    (b"webhook-signature", b"v1,abc="),
    (b"content-length", b"42"),
]


def test_only_the_wanted_headers_are_picked_and_the_first_of_repeats_wins() -> None:
    picked = pick_headers(RAW)
    assert picked == {
        "svix-id": "msg_first",
        "svix-timestamp": "1700000000",
        "webhook-signature": "v1,abc=",
        "content-length": "42",
    }
    starlette = Headers(raw=RAW)
    assert all(starlette.get(name) == value for name, value in picked.items())


def test_aliases_fill_in_and_a_missing_header_is_named() -> None:
    assert delivery_headers(pick_headers(RAW)) == {
        "svix-id": "msg_first",
        "svix-timestamp": "1700000000",
        "svix-signature": "v1,abc=",
    }
    with pytest.raises(Refusal) as refused:
        delivery_headers(pick_headers(RAW[:3]))
    assert (refused.value.code, str(refused.value)) == (
        "missing_headers",
        "missing svix-signature header",
    )
