"""The area models: each field reads its own flat variable, bounds are checked, tuning knobs
are marked advanced, the nightly reconcile's hours are hours of the day."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.config.areas import ReconcileSettings
from service.config.settings import Settings, setting
from service.config.values import ConfigError


def test_metrics_stay_on_the_main_port_unless_metrics_port_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("METRICS_PORT", "METRICS_HOST"):
        monkeypatch.delenv(name, raising=False)
    default = Settings()
    assert (default.metrics.port, default.metrics.host) == (None, "127.0.0.1")
    monkeypatch.setenv("METRICS_PORT", "9090")
    monkeypatch.setenv("METRICS_HOST", "0.0.0.0")
    configured = Settings()
    assert (configured.metrics.port, configured.metrics.host) == (9090, "0.0.0.0")
    for refused in ("0", "65536", "nine"):
        with pytest.raises(ValidationError, match="metrics_port"):
            Settings(metrics_port=refused)


def test_tuning_knobs_are_marked_advanced() -> None:
    knobs = ["RECONCILE_PAGE_SIZE", "WORKER_CONCURRENCY", "DB_POOL_SIZE", "WORKER_WAKE_WINDOW_MS"]
    assert all(setting(v).advanced for v in knobs)
    everyday = ["DATABASE_URL", "CLERK_SECRET_KEY", "RECONCILE_CRON_HOURS", "PORT"]
    assert not any(setting(v).advanced for v in everyday)


@pytest.mark.parametrize(("given", "hours"), [("3", {3}), ("2, 14,", {2, 14}), ("0,23", {0, 23})])
def test_the_nightly_reconcile_runs_at_hours_of_the_day(given: str, hours: set[int]) -> None:
    assert ReconcileSettings(cron_hours=given).hours() == hours


@pytest.mark.parametrize("given", ["", " , ", "24", "-1", "three", "3;4"])
def test_cron_hours_that_are_not_hours_are_refused(given: str) -> None:
    with pytest.raises(ConfigError, match="RECONCILE_CRON_HOURS"):
        ReconcileSettings(cron_hours=given).hours()
