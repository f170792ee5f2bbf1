"""Schema migrations: alembic, configured from pyproject.toml's [tool.alembic]; and the check
that a database is at the latest migration, which serve, worker, status and /readyz make."""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.config import ConfigError

_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def project_root() -> Path:
    """The directory holding `migrations/`: the source tree (editable install), or the working
    directory (the Docker image installs the package and copies migrations/ to /app)."""
    for candidate in (_SOURCE_ROOT, Path.cwd()):
        if (candidate / "migrations" / "env.py").exists():
            return candidate
    raise ConfigError(
        "migrations/ not found: run from the project directory (or /app in the image)"
    )


def alembic_config(database_url: str | None = None) -> Config:
    root = project_root()
    pyproject = root / "pyproject.toml"
    config = Config(toml_file=str(pyproject)) if pyproject.exists() else Config()
    # Absolute, so `clerk-replica migrate` works from any directory.
    config.set_main_option("script_location", str(root / "migrations"))
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    """Bring the database to `revision`. Runs its own event loop: call it outside one."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str:
    """The revision the migrations end at (what a migrated database's tables match)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise ConfigError("migrations/ holds no revision")
    return head


MIGRATE_HINT = "run `clerk-replica migrate`"


class SchemaBehind(RuntimeError):
    """The database is not at the latest migration (or not migrated at all)."""


@cache
def head_revisions() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def _current(connection: Connection) -> frozenset[str]:
    # alembic announces its context at info level: once per probe would be noise.
    announcer = logging.getLogger("alembic.runtime.migration")
    level = announcer.level
    announcer.setLevel(logging.WARNING)
    try:
        return frozenset(MigrationContext.configure(connection).get_current_heads())
    finally:
        announcer.setLevel(level)


async def schema_problem(conn: AsyncConnection) -> str | None:
    """Why the database is not at the latest migration, naming the fix; None when it is."""
    current = await conn.run_sync(_current)
    heads = head_revisions()
    if current == heads:
        return None
    if not current:
        return f"the database is not migrated: {MIGRATE_HINT}"
    at, latest = ", ".join(sorted(current)), ", ".join(sorted(heads))
    return f"the database is at {at}, not this version's latest ({latest}): {MIGRATE_HINT}"


async def require_latest(engine: AsyncEngine) -> None:
    """Raise SchemaBehind when the database is behind; connection errors pass through."""
    async with engine.connect() as conn:
        problem = await schema_problem(conn)
    if problem is not None:
        raise SchemaBehind(problem)
