"""`clerk-replica config`: every setting in effect, keyed by its environment variable, with
where its value came from, by area (advanced ones marked), and the settings of each
CLERK_INSTANCES instance.

Invariant: no secret leaves here: secret settings show only a known prefix (whsec_, sk_live_,
sk_test_), and passwords and tokens inside URLs are masked. It connects to nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import SecretStr

from service.config import (
    DEFAULT_INSTANCE,
    INSTANCE_VARIABLES,
    Settings,
    instance_variable,
    setting_fields,
)

MASK = "********"
_SHOWN_PREFIXES = ("whsec_", "sk_live_", "sk_test_")
_SECRET_WORDS = ("pass", "secret", "token", "key", "auth", "credential")
_INHERITED = {"API_URL": "CLERK_API_URL", "MAX_REQUESTS_PER_10S": "RECONCILE_MAX_REQUESTS_PER_10S"}


@dataclass(frozen=True)
class Shown:
    variable: str
    value: Any
    source: str  # "environment", "default", or "inherited from VAR"
    description: str = ""
    area: str = ""  # the title of the setting's group (not in --json)
    advanced: bool = False  # a tuning knob (not in --json)


def mask_secret(value: str) -> str:
    """A secret as `whsec_********`: the kind of secret shows, never any of its bits."""
    prefix = next((p for p in _SHOWN_PREFIXES if value.startswith(p)), "")
    return prefix + MASK


def mask_url(value: str) -> str:
    """A URL with the password of its user and secret-looking query parameters masked; the
    rest exactly as written."""
    if "://" not in value:
        return value
    try:
        url = urlsplit(value)
        shown = value
        if url.password is not None:
            userinfo, _, host = url.netloc.rpartition("@")
            shown = shown.replace(url.netloc, f"{userinfo.split(':', 1)[0]}:{MASK}@{host}", 1)
        pairs = parse_qsl(url.query, keep_blank_values=True)
        if any(_secret_word(k) for k, _ in pairs):
            query = urlencode([(k, MASK if _secret_word(k) else v) for k, v in pairs], safe="*")
            shown = shown.replace(f"?{url.query}", f"?{query}", 1)
        return shown
    except ValueError:
        return MASK  # not a URL we can take apart: show none of it


def _secret_word(name: str) -> bool:
    return any(word in name.lower() for word in _SECRET_WORDS)


def shown_value(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return mask_secret(value.get_secret_value())
    if isinstance(value, str):
        return mask_url(value)
    return value


def settings_in_effect(settings: Settings) -> list[Shown]:
    """Every setting, in declaration order (area by area)."""
    return [
        Shown(
            setting.variable,
            shown_value(setting.value(settings)),
            "environment" if setting.is_set(settings) else "default",
            setting.info.description or "",
            setting.area,
            setting.advanced,
        )
        for setting in setting_fields()
    ]


def instance_settings(settings: Settings) -> dict[str, list[Shown]]:
    """The variables of each named instance (CLERK_INSTANCES): set, inherited or default."""
    environ = {k.upper(): v for k, v in settings.instance_environ.items()}
    shown: dict[str, list[Shown]] = {}
    for name in settings.instance_names():
        if name == DEFAULT_INSTANCE:
            continue
        rows: list[Shown] = []
        for suffix in INSTANCE_VARIABLES:
            variable = instance_variable(name, suffix)
            if variable in environ:
                value = environ[variable]
                secret = "SECRET" in suffix
                raw = value.get_secret_value()
                rows.append(
                    Shown(variable, mask_secret(raw) if secret else mask_url(raw), "environment")
                )
            elif suffix in _INHERITED:
                inherited = settings.for_instance(name).clerk
                field = INSTANCE_VARIABLES[suffix]
                value = shown_value(getattr(inherited, field))
                rows.append(Shown(variable, value, f"inherited from {_INHERITED[suffix]}"))
            else:
                rows.append(Shown(variable, None, "default"))
        shown[name] = rows
    return shown


def config_json(settings: Settings) -> str:
    def table(rows: list[Shown]) -> dict[str, Any]:
        hidden = {"variable", "area", "advanced"}
        return {r.variable: {k: v for k, v in asdict(r).items() if k not in hidden} for r in rows}

    return json.dumps(
        {
            "settings": table(settings_in_effect(settings)),
            "instances": {n: table(rows) for n, rows in instance_settings(settings).items()},
        },
        indent=2,
    )


def config_text(settings: Settings) -> str:
    rows = settings_in_effect(settings)
    instances = instance_settings(settings)
    width = max(len(r.variable) for r in [*rows, *(r for i in instances.values() for r in i)])
    lines: list[str] = []
    area: str | None = None
    for row in rows:
        if not lines or row.area != area:
            area = row.area
            lines += [*([""] if lines else []), f"# {area}"]
        lines.append(_line(row, width) + ("  (advanced)" if row.advanced else ""))
    for name, instance_rows in instances.items():
        lines += ["", f"# instance {name} (CLERK_INSTANCES)"]
        lines += [_line(r, width) for r in instance_rows]
    return "\n".join(lines)


def _line(row: Shown, width: int) -> str:
    value = "(unset)" if row.value is None else json.dumps(row.value)
    if isinstance(row.value, str):
        value = row.value or '""'
    return f"{row.variable:<{width}}  {value}  [{row.source}]"
