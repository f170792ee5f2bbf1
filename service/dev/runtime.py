"""Where a running `clerk-replica dev` listens, so other commands in another terminal find it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

RUNTIME_FILE = "dev.json"


def write(state_dir: Path, **values: Any) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / RUNTIME_FILE
    path.unlink(missing_ok=True)
    # 0600: REDIS_URL may carry a password.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps({"pid": os.getpid(), **values}))


def remove(state_dir: Path) -> None:
    (state_dir / RUNTIME_FILE).unlink(missing_ok=True)


def read(state_dir: Path) -> dict[str, Any]:
    """The running dev stack's endpoints, or {} when none is running."""
    path = state_dir / RUNTIME_FILE
    try:
        values: dict[str, Any] = json.loads(path.read_text())
        os.kill(int(values["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return values
