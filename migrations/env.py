"""Alembic environment: async engines, the service's URL mapping, SQLite batch mode."""

from __future__ import annotations

import asyncio

from alembic import context
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

# Imported for their tables, registered on the shared metadata (the kinds registry imports
# every kind's module).
import service.feed.changes
import service.inbox.instances
import service.inbox.store
import service.kinds.registry
import service.reconcile.checkpoints
import service.reconcile.lock  # noqa: F401
from service.config import get_settings
from service.db.dialect import dialect_of
from service.db.engine import async_url, create_engine
from service.db.types import metadata
from service.feed import triggers
from service.operate import views

config = context.config
target_metadata = metadata


def _database_url() -> str:
    url = config.attributes.get("database_url")
    return str(url) if url else get_settings().database.url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    settings = get_settings()
    if connection.dialect.name == "postgresql":
        # Never queue behind a long lock and block the app's readers while waiting.
        connection.exec_driver_sql("SET lock_timeout = '10s'")
    fdw_schema = settings.database.fdw_schema
    with context.begin_transaction():
        if dialect_of(connection).schemas:
            # The engine's search_path is REPLICA_SCHEMA: the tables and alembic's own go there.
            views.ensure_schema(connection, settings.database.replica_schema)
        # The views follow from the tables: gone while they change, back once at head, in the
        # same transaction (service/operate/views.py).
        grants = views.drop(connection, settings.database.replica_schema, fdw_schema)
        triggers.drop(connection)  # the change feed's, likewise (service/feed/triggers.py)
        context.run_migrations()
        heads = ScriptDirectory.from_config(config).get_heads()
        if set(context.get_context().get_current_heads()) == set(heads):
            views.create(connection, settings.database.replica_schema, fdw_schema, grants)
            if settings.database.change_feed:
                triggers.create(connection)


async def _run_online() -> None:
    engine = create_engine(get_settings(), url=_database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=async_url(_database_url()).render_as_string(hide_password=False),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_online())
