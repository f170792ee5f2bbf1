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


@cli.command()
def reconcile(
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="Limit to these types (repeatable): organizations, users, memberships, "
            "invitations, domains.",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Report what would change; write nothing.")] = False,
    force: Annotated[
        bool, typer.Option(help="Tombstone even beyond RECONCILE_MAX_DELETE_SHARE.")
    ] = False,
    confirm: Annotated[
        bool | None,
        typer.Option(
            "--confirm/--no-confirm",
            help="Look each deletion candidate up before tombstoning it (default from "
            "RECONCILE_CONFIRM_DELETIONS).",
        ),
    ] = None,
    restart: Annotated[
        bool, typer.Option(help="Start over instead of resuming an unfinished run.")
    ] = False,
) -> None:
    """Make the replica equal to Clerk through the Backend API: backfill, update, tombstone.

    Exits 0 only when every requested type completed.

    Examples: clerk-replica reconcile --dry-run;  clerk-replica reconcile --only users
    """
    from service.ops import run_reconcile
    from service.reconcile.clerk_api import ClerkAuthError
    from service.reconcile.console import print_summary, progress_display
    from service.reconcile.lock import AlreadyRunning
    from service.reconcile.resources import RESOURCES
    from service.reconcile.run import ReconcileOptions

    settings = _settings()
    settings.clerk_key()
    unknown = sorted(set(only or ()) - set(RESOURCES))
    if unknown:
        raise ConfigError(
            f"unknown type(s) {', '.join(unknown)}: choose from {', '.join(RESOURCES)}"
        )
    options = ReconcileOptions(
        resources=tuple(only) if only else tuple(RESOURCES),
        dry_run=dry_run,
        force=force,
        confirm_deletions=settings.reconcile_confirm_deletions if confirm is None else confirm,
        restart=restart,
    )
    try:
        with progress_display() as on_progress:
            report = asyncio.run(run_reconcile(settings, options, on_progress))
    except (ClerkAuthError, AlreadyRunning) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    print_summary(report)
    raise SystemExit(0 if report.ok else 1)


def main() -> None:
    try:
        cli()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
