"""The settings reference: every setting of service.config.Settings by area, its variable and
default; the tuning knobs (advanced) in a table of their own."""

from __future__ import annotations

from typing import Any, get_args, get_origin

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from docs_gen.markdown import code, page, plain, table
from service.config import (
    DEFAULT_INSTANCE,
    INSTANCE_VARIABLES,
    Setting,
    Settings,
    instance_variable,
    setting_fields,
)


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


def fields(model: type[Settings] = Settings) -> list[tuple[str, FieldInfo]]:
    """(environment variable, field) of every setting, nested groups walked into."""
    return [(setting.variable, setting.info) for setting in setting_fields(model)]


def _row(setting: Setting) -> tuple[Any, ...]:
    info = setting.info
    if not info.description:
        raise MissingDescription(f"{setting.variable} has no description in service/config/")
    return (code(setting.variable), _default(info), _allowed(info), plain(info.description))


def render(model: type[Settings] = Settings) -> str:
    header = ("variable", "default", "allowed", "meaning")
    areas: dict[str, list[Setting]] = {}
    for setting in setting_fields(model):
        areas.setdefault(setting.area, []).append(setting)
    sections = [
        f"## {area}\n\n" + table(header, [_row(s) for s in found if not s.advanced])
        if any(not s.advanced for s in found)
        else f"## {area}\n\nEvery setting of this area is a tuning knob: see below."
        for area, found in areas.items()
    ]
    advanced = [(plain(s.area), *_row(s)) for s in setting_fields(model) if s.advanced]
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

The settings come by area; the tuning knobs (pool sizes, batch sizes, timeouts, rate shares,
...) follow in [Advanced settings](#advanced-settings): their defaults suit nearly every
install.
""",
        *sections,
        """
## Advanced settings

Tuning knobs, by area. Change one when a measurement says so.
""",
        table(("area", *header), advanced),
        """
## Variables of each named instance

With `CLERK_INSTANCES=prod,staging`, each name reads variables of its own, in place of the
single-instance ones (see [Several Clerk instances](../how-to/several-instances.md)). What a
named instance does not set itself is the single-instance value, except its secrets and key:
an instance never falls back on another one's.
""",
        table(("variable", "stands in for"), per_instance),
    )
