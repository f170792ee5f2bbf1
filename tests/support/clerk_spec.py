"""Clerk's own OpenAPI specs (tests/clerk_openapi/, copied unchanged from Clerk's published
files) as JSON Schema: to validate what the fake Backend API answers, and to generate every
webhook payload the spec allows.

OpenAPI 3.0 is not quite JSON Schema. The conversion inlines `$ref`s (a recursive one becomes
`{}`, anything), turns `nullable: true` into "or null", reads `oneOf` as `anyOf` (Clerk's
verification variants overlap, so a real payload can match two), merges `allOf` parts into one
object schema (Clerk's parts each say `additionalProperties: false`, which read literally would
refuse every property another part adds, e.g. an accepted invitation's `user_id`) and drops
what only documents.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

SPECS = Path(__file__).resolve().parent.parent / "clerk_openapi"
BACKEND = SPECS / "backend-api-2026-05-12.yml"
WEBHOOKS = SPECS / "webhooks-2025-04-15.yml"

_DOCUMENTATION = {
    "example",
    "examples",
    "description",
    "title",
    "discriminator",
    "readOnly",
    "writeOnly",
    "xml",
    "externalDocs",
    "deprecated",
    "format",
}
Schema = dict[str, Any]


@cache
def load(path: Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open() as f:
        document: dict[str, Any] = yaml.load(f, Loader=loader)
    return document


def to_json_schema(spec: dict[str, Any], schema: Any, seen: tuple[str, ...] = ()) -> Any:
    """`schema` of `spec` as self-contained JSON Schema (see the module docstring)."""
    if isinstance(schema, list):
        return [to_json_schema(spec, item, seen) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        ref = schema["$ref"]
        if ref in seen:
            return {}
        return to_json_schema(spec, resolve(spec, ref), (*seen, ref))
    out: Schema = {}
    for key, value in schema.items():
        if key in _DOCUMENTATION or key.startswith("x-") or key == "nullable":
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(spec, s, seen) for name, s in value.items()}
        elif key == "oneOf":
            out["anyOf"] = to_json_schema(spec, value, seen)
        else:
            out[key] = to_json_schema(spec, value, seen)
    if "allOf" in out:
        out = merge([{k: v for k, v in out.items() if k != "allOf"}, *out["allOf"]])
    if schema.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def merge(parts: list[Any]) -> Schema:
    """allOf of object schemas as one: their properties and requirements together, closed to
    other properties only if every part was."""
    merged: Schema = {}
    closed = [p.get("additionalProperties") is False for p in parts if isinstance(p, dict)]
    for part in parts:
        if not isinstance(part, dict):
            continue
        for key, value in part.items():
            if key == "properties":
                merged.setdefault("properties", {}).update(value)
            elif key == "required":
                merged["required"] = sorted({*merged.get("required", ()), *value})
            elif key != "additionalProperties":
                merged.setdefault(key, value)
    if closed and all(closed):
        merged["additionalProperties"] = False
    return merged


def resolve(spec: dict[str, Any], ref: str) -> Any:
    node: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


@cache
def backend_response(path: str, status: str = "200") -> Schema:
    """The JSON Schema of the Backend API's answer to GET `path` (as the spec spells it)."""
    spec = load(BACKEND)
    response = spec["paths"][path]["get"]["responses"][status]
    if "$ref" in response:
        response = resolve(spec, response["$ref"])
    schema: Schema = to_json_schema(spec, response["content"]["application/json"]["schema"])
    return schema


@cache
def backend_schema(name: str) -> Schema:
    spec = load(BACKEND)
    schema: Schema = to_json_schema(spec, spec["components"]["schemas"][name])
    return schema


# The fake Backend API's collections and the backend spec's schema of each object it lists.
LISTED = {
    "users": "User",
    "organizations": "Organization",
    "memberships": "OrganizationMembership",
    "invitations": "OrganizationInvitation",
    "domains": "OrganizationDomain",
    "roles": "Role",
    "permissions": "Permission",
    "waitlist_entries": "WaitlistEntry",
    "billing_plans": "CommercePlan",
    "billing_subscription_items": "CommerceSubscriptionItem",
}


@cache
def optional_fields(collection: str) -> frozenset[str]:
    """The top-level fields the backend spec lets an object of the fake's `collection` leave
    out (the ones its schema does not require)."""
    schema = backend_schema(LISTED[collection])
    return frozenset(schema.get("properties", {})) - frozenset(schema.get("required", ()))


@cache
def webhook_events() -> dict[str, Schema]:
    """Every webhook event type the spec lists, with the JSON Schema of its envelope's `data`
    (what the generator varies; the envelope around it is fixed by the tests)."""
    spec = load(WEBHOOKS)
    events: dict[str, Schema] = {}
    for event_type, hook in spec["x-webhooks"].items():
        body = hook["post"]["requestBody"]["content"]["application/json"]["schema"]
        for part in body.get("allOf", [body]):
            data = part.get("properties", {}).get("data")
            if data is not None:
                events[event_type] = to_json_schema(spec, data)
    return events


@cache
def example_events() -> dict[str, Any]:
    """The spec's own example event of each type that has one (inline, or the first of its
    `examples`)."""
    spec = load(WEBHOOKS)
    found: dict[str, Any] = {}
    for event_type, hook in spec["x-webhooks"].items():
        body = hook["post"]["requestBody"]["content"]["application/json"]
        example = body.get("example")
        if example is None and body.get("examples"):
            first = next(iter(body["examples"].values()))
            example = (resolve(spec, first["$ref"]) if "$ref" in first else first).get("value")
        if example is not None:
            found[event_type] = example
    return found
