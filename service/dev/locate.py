"""Which database and Redis a command uses, found the same way by every command: DATABASE_URL
and REDIS_URL when set, else those of a running `clerk-replica dev` (its state file), else the
defaults. `used` names them for the operator, passwords masked."""

from __future__ import annotations

from pathlib import Path

from service.config import Settings, masked_url, setting
from service.dev import runtime

_PARTS = (("DATABASE_URL", "database"), ("REDIS_URL", "redis"))


def located(settings: Settings) -> tuple[Settings, list[str]]:
    """`settings` with the running dev's URLs where no variable set them, and one line per
    part saying what is used and where it came from."""
    running = runtime.read(Path(settings.dev.state_dir))
    updates: dict[str, str] = {}
    used: list[str] = []
    for variable, label in _PARTS:
        field = variable.lower()  # also the key of the running dev's state file
        if settings.is_set(variable):
            source = variable
        elif isinstance(running.get(field), str):
            updates[field] = running[field]
            source = f"the running `clerk-replica dev` (pid {running['pid']})"
        else:
            source = f"default; set {variable}"
        value = updates.get(field, setting(variable).value(settings))
        used.append(f"{label}: {masked_url(value)} ({source})")
    return (settings.updated(**updates) if updates else settings), used
