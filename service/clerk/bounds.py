"""The shape every payload the service keeps must have: at most MAX_DEPTH levels of arrays and
objects, and no NUL character in any string or key.

Walks of a payload are bounded by MAX_DEPTH, never by the interpreter's stack: ingest refuses a
deeper body (4xx), apply fails a deeper stored event, reconcile counts a deeper object invalid.
PostgreSQL stores no NUL in text or jsonb, so a NUL Clerk sends is dropped, not a reason to fail.
The checks look at the text first: an ordinary payload costs a scan in C, not a walk.
"""

from __future__ import annotations

from typing import Any

# Far beyond any object Clerk sends (metadata is a few kilobytes of JSON), far below the stack.
MAX_DEPTH = 256

_NUL_ESCAPE = "\\u0000"


def may_be_too_deep(text: str | bytes) -> bool:
    """False when the JSON text cannot nest more than MAX_DEPTH levels (too few brackets)."""
    if isinstance(text, str):
        return text.count("{") + text.count("[") > MAX_DEPTH
    return text.count(b"{") + text.count(b"[") > MAX_DEPTH


def may_hold_nul(text: str | bytes) -> bool:
    """False when the JSON text holds no NUL (JSON writes one only as an escape)."""
    if isinstance(text, str):
        return _NUL_ESCAPE in text
    return _NUL_ESCAPE.encode() in text


def depth(value: Any) -> int:
    """Levels of arrays and objects in a parsed JSON value, counted without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def strip_nul(value: Any) -> Any:
    """The parsed JSON value without NUL in any string or key, changed in place (and returned:
    a bare string comes back as a new one). Without recursion, so any depth is safe."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key in [k for k in item if "\x00" in k]:
                item[key.replace("\x00", "")] = item.pop(key)
            for key, child in item.items():
                if isinstance(child, str):
                    if "\x00" in child:
                        item[key] = child.replace("\x00", "")
                elif isinstance(child, dict | list):
                    stack.append(child)
        elif isinstance(item, list):
            for n, child in enumerate(item):
                if isinstance(child, str):
                    if "\x00" in child:
                        item[n] = child.replace("\x00", "")
                elif isinstance(child, dict | list):
                    stack.append(child)
    return value
