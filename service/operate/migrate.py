"""Schema migrations: alembic, configured from pyproject.toml's [tool.alembic]."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

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
