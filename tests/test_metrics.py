"""The one bearer-token check every /metrics goes through."""

from __future__ import annotations

from service.metrics import bearer_matches


def test_only_the_exact_bearer_token_matches() -> None:
    assert bearer_matches(b"Bearer s3cret", b"s3cret")
    for given in (b"", b"s3cret", b"Bearer s3cre", b"Bearer s3cret ", b"bearer s3cret", b"\xff"):
        assert not bearer_matches(given, b"s3cret")
    assert bearer_matches(b"", None)  # no METRICS_TOKEN: open (bind it to a private address)
