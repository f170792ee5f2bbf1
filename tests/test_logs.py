"""Log levels: below the level nothing is rendered; at it, one JSON line with the ids."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from service.config import Settings
from service.logs import configure_logging, get_logger


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.mark.parametrize("level", ["warning", "info"])
def test_info_lines_are_written_only_at_info(
    level: str, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(log_level=level, log_format="json"))
    log = get_logger("test")
    log.info("delivery.accepted", svix_id="msg_1", object_id="user_1")
    log.warning("delivery.enqueue_failed", svix_id="msg_2")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    events = [(line["event"], line["level"], line["svix_id"]) for line in lines]
    expected = [("delivery.enqueue_failed", "warning", "msg_2")]
    if level == "info":
        expected.insert(0, ("delivery.accepted", "info", "msg_1"))
    assert events == expected
    assert all("timestamp" in line for line in lines)


def test_json_lines_carry_tracebacks_as_text(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(log_format="json"))
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError:
        get_logger("test").error("apply.crashed", exc_info=True)
        logging.getLogger("a.library").exception("library.crashed")
    ours, theirs = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    for line in (ours, theirs):
        assert isinstance(line["exception"], str)
        assert line["exception"].startswith("Traceback (most recent call last):")
        assert "ZeroDivisionError: boom" in line["exception"]
    assert (ours["event"], theirs["event"]) == ("apply.crashed", "library.crashed")
