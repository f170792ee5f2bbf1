"""Hypothesis strategies for the payloads a JSON Schema (from tests/support/clerk_spec.py) allows.

hypothesis-jsonschema would be the library for this, but its last release (0.23.1, 2024) fails
on current Hypothesis (`'many' object has no attribute 'more'`), so this covers the subset
Clerk's specs use: objects (required properties always, optional ones sometimes, null where
allowed), arrays, enums, strings (and their patterns), numbers, booleans, anyOf and allOf.
Values are realistic where the service reads them: ids are non-empty, and times (`*_at`,
`*_date`, `period_*`) are epoch milliseconds of this decade.
"""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st

from tests.support.clerk_spec import merge

T_MIN, T_MAX = 1_600_000_000_000, 1_900_000_000_000  # 2020..2030, epoch ms
# An id: [a-z]{3,6}_[A-Za-z0-9]{6,27}, built from its two parts (the same strings from_regex
# would give, without the filter it draws them through: a large share of generating a payload).
_ID = st.builds(
    "{}_{}".format,
    st.text(string.ascii_lowercase, min_size=3, max_size=6),
    st.text(string.ascii_letters + string.digits, min_size=6, max_size=27),
)
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=24)


def payloads(schema: Any, name: str = "") -> st.SearchStrategy[Any]:
    """What `schema` allows; `name` is the property it sits in (ids and times by name)."""
    if not isinstance(schema, dict) or not schema:
        return st.none() | st.booleans() | st.integers(-(2**31) + 1, 2**31 - 1) | _TEXT
    if "anyOf" in schema:
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        return st.one_of([payloads(merge([rest, s]), name) for s in schema["anyOf"]])
    if "allOf" in schema:
        rest = {k: v for k, v in schema.items() if k != "allOf"}
        return payloads(merge([rest, *schema["allOf"]]), name)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "object" or (kind is None and "properties" in schema):
        return _object(schema)
    if kind == "array":
        return st.lists(payloads(schema.get("items", {}), name), max_size=3)
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        return _ID if name == "id" or name.endswith("_id") else _TEXT
    if kind == "integer":
        if name.endswith(("_at", "_date")) or name.startswith("period_"):
            return st.integers(T_MIN, T_MAX)
        return st.integers(schema.get("minimum", -(2**31) + 1), schema.get("maximum", 2**31 - 1))
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    if kind == "boolean":
        return st.booleans()
    return st.none()


def _object(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ())) & set(properties)
    fixed = {k: payloads(properties[k], k) for k in sorted(required)}
    optional = {k: payloads(v, k) for k, v in sorted(properties.items()) if k not in required}
    return st.fixed_dictionaries(fixed, optional=optional)
