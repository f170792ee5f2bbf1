"""The settings reference: every field of service.config.Settings, its variable and default."""

from __future__ import annotations

from typing import Any, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from docs_gen.markdown import code, page, plain, table
from service.config import DEFAULT_INSTANCE, INSTANCE_VARIABLES, Settings, instance_variable

# Read from the environment by another name (the CLERK_<NAME>_... variables): not a variable.
NOT_VARIABLES = {"instance_environ"}


class MissingDescription(ValueError):
    """A setting without Field(description=...): the reference would have nothing to say."""


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        return "(computed)"
    value = info.default
    if value is PydanticUndefined or value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, bool):
        return code(str(value).lower())
    if value == "":
        return "empty"
    return code(value)


def _allowed(info: FieldInfo) -> str:
    notes: list[str] = []
    args = get_args(info.annotation)
    if get_origin(info.annotation) is not None and all(isinstance(a, str) for a in args):
        notes.append(", ".join(code(a) for a in args))
    symbols = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    for item in info.metadata:
        for attr, symbol in symbols.items():
            bound = getattr(item, attr, None)
            if bound is not None:
                notes.append(f"{symbol} {bound}")
        pattern = getattr(item, "pattern", None)
        if pattern is not None:
            notes.append(f"matches `{pattern}`")
    return "; ".join(notes)


def fields(model: type[BaseModel] = Settings, prefix: str = "") -> list[tuple[str, FieldInfo]]:
    """(environment variable, field) of every setting, nested groups walked into."""
    found: list[tuple[str, FieldInfo]] = []
    for name, info in model.model_fields.items():
        if name in NOT_VARIABLES:
            continue
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            found += fields(nested, prefix)
            continue
        alias = info.validation_alias if isinstance(info.validation_alias, str) else None
        found.append(((alias or prefix + name).upper(), info))
    return found


def render(model: type[BaseModel] = Settings) -> str:
    rows: list[tuple[Any, ...]] = []
    for variable, info in fields(model):
        if not info.description:
            raise MissingDescription(f"{variable} has no description in service/config.py")
        rows.append((code(variable), _default(info), _allowed(info), plain(info.description)))
    per_instance = [
        (code(f"CLERK_<NAME>_{suffix}"), code(instance_variable(DEFAULT_INSTANCE, suffix)))
        for suffix in INSTANCE_VARIABLES
    ]
    return page(
        "Settings",
        """
Every setting is an environment variable (names are case-insensitive). Each has a default that
works on one machine, except the webhook signing secret (required by `serve`) and the Clerk
secret key (required by `reconcile`). An invalid value stops every command at start with a
message naming the variable, never its value.
""",
        table(("variable", "default", "allowed", "meaning"), rows),
        """
## Variables of each named instance

With `CLERK_INSTANCES=prod,staging`, each name reads variables of its own, in place of the
single-instance ones (see [Several Clerk instances](../how-to/several-instances.md)). What a
named instance does not set itself is the single-instance value, except its secrets and key:
an instance never falls back on another one's.
""",
        table(("variable", "stands in for"), per_instance),
    )
