"""`clerk-replica dev --reset`: start over with an empty replica.

Invariant: only what `dev` itself keeps is removed (the SQLite database with its journal files,
and the embedded Redis's data); a PostgreSQL DATABASE_URL or a REDIS_URL server is never
touched, and nothing is removed while a `dev` stack is running.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from service.config import ConfigError, Settings
from service.db.engine import sqlite_file
from service.dev import runtime

REDIS_DIR = "redis"
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def reset(settings: Settings, state_dir: Path) -> list[Path]:
    """Delete the replica database file and the embedded Redis's data; returns what was
    removed (the signing secret in `state_dir` is kept)."""
    database = sqlite_file(settings.database.url)
    if database is None:
        raise ConfigError(
            "--reset starts over only with a SQLite DATABASE_URL (the default): it never "
            "drops tables of another database"
        )
    if runtime.read(state_dir):
        raise ConfigError("clerk-replica dev is already running: stop it (Ctrl-C), then --reset")
    removed: list[Path] = []
    for path in [database, *(Path(f"{database}{end}") for end in _SQLITE_COMPANIONS)]:
        if path.exists():
            path.unlink()
            removed.append(path)
    redis_data = state_dir / REDIS_DIR
    if redis_data.exists() and not settings.is_set("REDIS_URL"):
        shutil.rmtree(redis_data)
        removed.append(redis_data)
    return removed
