"""Chunks: every item once, in order, none bigger than the size."""

from __future__ import annotations

from service.db.chunks import CHUNK, chunks


def test_chunks_cover_the_items_in_order_within_the_size() -> None:
    items = list(range(1234))
    parts = list(chunks(items, 500))
    assert [len(p) for p in parts] == [500, 500, 234]
    assert [i for p in parts for i in p] == items


def test_no_items_no_chunks_and_the_default_size() -> None:
    assert list(chunks([])) == []
    assert [len(p) for p in chunks(list(range(CHUNK + 1)))] == [CHUNK, 1]
