"""Statements over many values go in chunks, under the bind-parameter limits of both drivers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

CHUNK = 500

T = TypeVar("T")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
