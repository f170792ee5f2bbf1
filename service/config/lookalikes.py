"""Variables that look like our settings but are none: a misspelt setting, or an instance's
variable for an instance CLERK_INSTANCES does not name; Clerk's own SDK variables are never
flagged. Names only: values are never read."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping

from service.config.instances import INSTANCE_NAME, INSTANCE_VARIABLES, instance_variable
from service.config.settings import setting_variables

# Variables of Clerk's own SDKs and tools that share our CLERK_ prefix: never warned about.
CLERK_SDK_VARIABLES = frozenset(
    {
        "CLERK_PUBLISHABLE_KEY",
        "CLERK_JWT_KEY",
        "CLERK_ENCRYPTION_KEY",
        "CLERK_MACHINE_SECRET_KEY",
        "CLERK_API_KEY",
        "CLERK_FRONTEND_API",
        "CLERK_FRONTEND_API_URL",
        "CLERK_BACKEND_API_URL",
        "CLERK_DOMAIN",
        "CLERK_PROXY_URL",
        "CLERK_IS_SATELLITE",
        "CLERK_JS_URL",
        "CLERK_JS_VERSION",
        "CLERK_SIGN_IN_URL",
        "CLERK_SIGN_UP_URL",
        "CLERK_SIGN_IN_FORCE_REDIRECT_URL",
        "CLERK_SIGN_UP_FORCE_REDIRECT_URL",
        "CLERK_SIGN_IN_FALLBACK_REDIRECT_URL",
        "CLERK_SIGN_UP_FALLBACK_REDIRECT_URL",
        "CLERK_AFTER_SIGN_IN_URL",
        "CLERK_AFTER_SIGN_UP_URL",
        "CLERK_AFTER_SIGN_OUT_URL",
        "CLERK_TELEMETRY_DISABLED",
        "CLERK_TELEMETRY_DEBUG",
        "CLERK_AUTHORIZED_PARTIES",
    }
)
# How alike (difflib's ratio) a name must be to one of ours to count as its misspelling.
LOOKALIKE_CUTOFF = 0.8


def _declared_instances(environ: dict[str, str]) -> list[str]:
    raw = environ.get("CLERK_INSTANCES", "")
    return [name.strip().lower() for name in raw.split(",") if name.strip()]


def lookalike_variables(environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(variable, advice) for each variable of the environment that looks like one of our
    settings but is none: its first word is one of our settings' (CLERK_, RECONCILE_, ...) and
    it is close to one of our names, or it has an instance's suffix for an instance that
    CLERK_INSTANCES does not name. Names only: values are never read."""
    env = {
        key.upper(): value for key, value in (os.environ if environ is None else environ).items()
    }
    ours = set(setting_variables())
    prefixes = {name.split("_", 1)[0] + "_" for name in ours if "_" in name}
    declared = _declared_instances(env)
    known = ours | {
        instance_variable(name, suffix) for name in declared for suffix in INSTANCE_VARIABLES
    }
    suffixes = sorted(INSTANCE_VARIABLES, key=len, reverse=True)
    found: list[tuple[str, str]] = []
    for variable in sorted(env):
        if variable in known or variable in CLERK_SDK_VARIABLES:
            continue
        if not variable.startswith(tuple(prefixes)):
            continue
        suffix = next((s for s in suffixes if variable.endswith(f"_{s}")), None)
        name = variable.removeprefix("CLERK_").removesuffix(f"_{suffix}").lower()
        instance_like = (
            suffix is not None and variable.startswith("CLERK_") and INSTANCE_NAME.match(name)
        )
        # An instance's variable is compared with the declared instances' only.
        names = sorted(known - ours) if instance_like else sorted(known)
        close = difflib.get_close_matches(variable, names, n=1, cutoff=LOOKALIKE_CUTOFF)
        if close:
            found.append((variable, f"did you mean {close[0]}?"))
        elif instance_like:
            found.append((variable, f"CLERK_INSTANCES does not name an instance {name!r}"))
    return found
