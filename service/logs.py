"""Structured logs: JSON in production, readable on a terminal. Events carry ids, never payloads."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from service.config import Settings


def configure_logging(settings: Settings) -> None:
    level = getattr(logging, settings.log.level.upper())
    as_json = settings.log.format == "json" or (
        settings.log.format == "auto" and not sys.stderr.isatty()
    )
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Below the level, a call returns at once: no processors, no timestamp. Ingest logs
        # each delivery at info; at warning that line must cost next to nothing.
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _drop_color_message,
                # JSON carries a traceback as text; the console renderer prints its own.
                *([structlog.processors.format_exc_info] if as_json else []),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log would print every delivery's path and client; ours is enough.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # Libraries that log SQL with its parameters (payloads: emails, names) at debug or info
    # level stay quiet whatever LOG_LEVEL says; their warnings and errors still come through.
    for noisy in ("aiosqlite", "asyncpg", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def _drop_color_message(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event.pop("color_message", None)  # uvicorn's ANSI copy of the message
    return event


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)
