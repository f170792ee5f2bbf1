"""Commands find the running dev's database and Redis unless the variables say otherwise, and
name what they use with passwords masked."""

from __future__ import annotations

import os
from pathlib import Path

from service.config import Settings, masked_url
from service.dev import runtime
from service.dev.locate import located


def test_variables_win_over_a_running_dev_and_passwords_are_masked(tmp_path: Path) -> None:
    runtime.write(tmp_path, redis_url="redis://127.0.0.1:7001/0", database_url="sqlite:///./dev.db")
    given = Settings(
        dev_state_dir=str(tmp_path), database_url="postgresql://app:s3cret@db.internal/app"
    )
    settings, used = located(given)
    assert settings.database.url == "postgresql://app:s3cret@db.internal/app"
    assert settings.redis.url == "redis://127.0.0.1:7001/0"
    assert used == [
        "database: postgresql://app:***@db.internal/app (DATABASE_URL)",
        f"redis: redis://127.0.0.1:7001/0 (the running `clerk-replica dev` (pid {os.getpid()}))",
    ]


def test_without_a_running_dev_the_defaults_are_named(tmp_path: Path) -> None:
    runtime.write(tmp_path, redis_url="redis://127.0.0.1:7001/0")
    (tmp_path / runtime.RUNTIME_FILE).write_text('{"pid": 999999999, "redis_url": "x"}')
    settings, used = located(Settings(dev_state_dir=str(tmp_path)))
    assert settings.redis.url == "redis://localhost:6379/0"
    assert used[1] == "redis: redis://localhost:6379/0 (default; set REDIS_URL)"


def test_masking_keeps_everything_but_the_password() -> None:
    assert masked_url("redis://:pw@h:6379/2") == "redis://:***@h:6379/2"
    assert masked_url("sqlite:///./x.db") == "sqlite:///./x.db"
    assert masked_url("not a url") == "(unparsable URL)"
