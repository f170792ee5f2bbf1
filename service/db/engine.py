"""Database engines: maps the URLs teams paste to an async driver, tunes SQLite for durability."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service import jsoncodec
from service.config import ConfigError, Settings

_POSTGRES_SCHEMES = {"postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg"}
_SQLITE_SCHEMES = {"sqlite", "sqlite+aiosqlite"}


def async_url(raw: str) -> URL:
    """Turn postgres://, postgresql:// or sqlite:/// into the async driver's URL.

    Heroku/Fly style URLs carry `sslmode`, which asyncpg calls `ssl`.
    """
    try:
        url = make_url(
            raw.replace("postgres://", "postgresql://", 1) if raw.startswith("postgres://") else raw
        )
    except Exception as exc:
        raise ConfigError("DATABASE_URL is not a valid database URL") from exc
    if url.drivername in _POSTGRES_SCHEMES:
        query = dict(url.query)
        if "sslmode" in query:
            query["ssl"] = query.pop("sslmode")
        return url.set(drivername="postgresql+asyncpg", query=query)
    if url.drivername in _SQLITE_SCHEMES:
        return url.set(drivername="sqlite+aiosqlite")
    raise ConfigError(
        f"DATABASE_URL scheme {url.drivername!r} is not supported: use postgresql:// or sqlite:///"
    )


def sqlite_file(raw: str) -> Path | None:
    """The file of a SQLite DATABASE_URL; None for another database or an in-memory one."""
    url = async_url(raw)
    if url.drivername not in _SQLITE_SCHEMES or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser()


def create_engine(
    settings: Settings, *, url: str | None = None, pre_ping: bool = True
) -> AsyncEngine:
    """One engine per process; parameters are hidden from error messages (they hold PII).

    `pre_ping` checks a pooled connection before use (a round trip): worth it where a dead
    connection would fail a request, not where the failure is retried anyway (the worker).
    """
    target = async_url(url or settings.database.url)
    kwargs: dict[str, Any] = {
        "hide_parameters": True,
        "pool_pre_ping": pre_ping,
        "json_serializer": jsoncodec.dumps,
        "json_deserializer": jsoncodec.loads,
    }
    if target.drivername.startswith("sqlite"):
        database = target.database or ""
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": settings.database.connect_timeout_seconds}
        engine = create_async_engine(target, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs["pool_size"] = settings.database.pool_size
    kwargs["pool_timeout"] = settings.database.connect_timeout_seconds
    kwargs["connect_args"] = {
        "timeout": settings.database.connect_timeout_seconds,
        # Every name we use, unqualified, resolves in REPLICA_SCHEMA (migrations create it).
        "server_settings": {"search_path": settings.database.replica_schema},
    }
    return create_async_engine(target, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers work while a worker writes; synchronous=FULL makes a commit durable
    # before ingest acknowledges; busy_timeout queues writers instead of failing them.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
