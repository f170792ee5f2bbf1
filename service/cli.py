"""The clerk-replica command line."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import typer

from service.config import ConfigError, Settings, get_settings
from service.logs import configure_logging

cli = typer.Typer(
    help="Keep an app database in sync with Clerk.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(settings)
    return settings


@cli.command()
def migrate() -> None:
    """Apply database migrations (alembic upgrade head).

    Example: DATABASE_URL=postgres://app@db/app clerk-replica migrate
    """
    from service.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    typer.echo("database is at the latest schema")


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (env HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (env PORT).")] = None,
) -> None:
    """Run the web app that receives Clerk webhooks at POST /webhooks/clerk.

    Example: CLERK_WEBHOOK_SIGNING_SECRET=whsec_... clerk-replica serve --port 8000
    """
    import uvicorn

    settings = _settings()
    settings.signing_secrets()  # refuse to start without a secret, naming the variable
    uvicorn.run(
        "service.app:app_factory",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        proxy_headers=True,
    )


@cli.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Stop once the queue is empty.")] = False,
) -> None:
    """Run the arq worker that applies events to the replica.

    Example: REDIS_URL=redis://localhost:6379/0 clerk-replica worker
    """
    from service.queue.worker import build_worker

    build_worker(_settings(), burst=burst).run()


@cli.command()
def replay(
    svix_id: Annotated[str | None, typer.Option("--id", help="Only this svix-id.")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Only events received at or after this time (UTC).")
    ] = None,
) -> None:
    """Re-queue failed events (after fixing what made them fail).

    Example: clerk-replica replay --id msg_2abc...
    """
    from service.ops import replay_failed

    settings = _settings()
    count = asyncio.run(replay_failed(settings, svix_id=svix_id, since=since))
    typer.echo(f"re-queued {count} failed event(s)")


def main() -> None:
    try:
        cli()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
