"""The `clerk-replica` command as a user runs it: the venv's executable, configured by
environment variables only.

`env()` starts from this process's environment without any CLERK_, DATABASE_ or REDIS_
variable, so a child sees exactly the settings a test gives it and nothing from the shell.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.fake_clerk import KEY

CLI = str(Path(sys.executable).parent / "clerk-replica")


def env(**values: str) -> dict[str, str]:
    """The environment for a child: ours without service settings, then `values` as
    upper-cased variables (LOG_FORMAT=json unless given)."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("CLERK_", "DATABASE_", "REDIS_"))
    }
    base.update({"LOG_FORMAT": "json", **{k.upper(): v for k, v in values.items()}})
    return base


def run(*args: str, timeout: float = 120, **values: str) -> subprocess.CompletedProcess[str]:
    """`clerk-replica *args` to completion, its output captured as text."""
    return subprocess.run(
        [CLI, *args], env=env(**values), capture_output=True, text=True, timeout=timeout
    )


def reconcile_cli(
    *args: str, database_url: str, clerk_url: str, key: str = KEY, **extra: str
) -> subprocess.CompletedProcess[str]:
    """`clerk-replica reconcile *args` against a database and a (fake) Clerk API."""
    return subprocess.run(
        [CLI, "reconcile", *args],
        env=env(
            database_url=database_url,
            clerk_secret_key=key,
            clerk_api_url=clerk_url,
            reconcile_max_requests_per_10s="10000",
            **extra,
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
