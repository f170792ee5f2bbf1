"""`dev --reset` removes only what `dev` keeps (the SQLite database and its journal files, the
embedded Redis's data), keeps the signing secret, and refuses what it must not touch."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import ConfigError
from service.dev import runtime
from service.dev.reset import reset
from service.dev.secret import load_or_create
from tests.support.settings import make_settings


def dev_files(tmp_path: Path) -> tuple[Path, Path]:
    database, state = tmp_path / "replica.db", tmp_path / ".clerk-replica"
    for path in (database, Path(f"{database}-wal"), state / "redis" / "dump.rdb"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    load_or_create(state)
    return database, state


def test_reset_removes_the_database_and_the_embedded_redis(tmp_path: Path) -> None:
    database, state = dev_files(tmp_path)
    settings = make_settings(f"sqlite:///{database}", "redis://unused")
    settings = settings.model_copy(deep=True)
    settings.redis.model_fields_set.discard("url")  # as when REDIS_URL is not set
    removed = reset(settings, state)
    assert removed == [database, Path(f"{database}-wal"), state / "redis"]
    assert not database.exists() and not (state / "redis").exists()
    assert (state / "signing-secret").exists()
    assert reset(settings, state) == []  # again: nothing left to remove


def test_reset_leaves_a_redis_it_did_not_start(tmp_path: Path) -> None:
    database, state = dev_files(tmp_path)
    removed = reset(make_settings(f"sqlite:///{database}", "redis://127.0.0.1:1/0"), state)
    assert removed == [database, Path(f"{database}-wal")]
    assert (state / "redis" / "dump.rdb").exists()


def test_reset_never_touches_another_database(tmp_path: Path) -> None:
    settings = make_settings("postgresql://app@127.0.0.1/app", "redis://127.0.0.1:1/0")
    with pytest.raises(ConfigError, match="SQLite DATABASE_URL"):
        reset(settings, tmp_path)


def test_reset_refuses_while_dev_runs(tmp_path: Path) -> None:
    database, state = dev_files(tmp_path)
    runtime.write(state, webhook_url="http://127.0.0.1:1/webhooks/clerk")
    try:
        with pytest.raises(ConfigError, match="already running"):
            reset(make_settings(f"sqlite:///{database}", "redis://127.0.0.1:1/0"), state)
    finally:
        runtime.remove(state)
    assert database.exists()
