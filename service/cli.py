"""The clerk-replica command line. One concept: each command is a thin shell over the part
that does the work (operate, reconcile, queue, web, dev), importing it only when run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import traceback
from datetime import datetime
from typing import Annotated, Any

import typer

from service import process
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


def _option(flag: str, field: str, value: Any) -> Any:
    """A command-line option checked as the environment variable it stands for is (the same
    Settings field, the same limits): `serve --port 99999` is refused like PORT=99999."""
    from pydantic import TypeAdapter, ValidationError

    info = Settings.model_fields[field]
    try:
        checked: TypeAdapter[Any] = TypeAdapter(Annotated[info.annotation, info])  # type: ignore[arg-type]
        return checked.validate_python(value)
    except ValidationError as exc:
        raise ConfigError(f"{flag}: {exc.errors()[0]['msg']}") from None


@cli.command()
def migrate() -> None:
    """Apply database migrations (alembic upgrade head).

    Example: DATABASE_URL=postgres://app@db/app clerk-replica migrate
    """
    from service.operate.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    typer.echo("database is at the latest schema")


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (env HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (env PORT).")] = None,
) -> None:
    """Run the web app that receives Clerk webhooks at POST /webhooks/clerk.

    GET /metrics is served on the same port, or with METRICS_PORT set on that port only.

    Example: CLERK_WEBHOOK_SIGNING_SECRET=whsec_... clerk-replica serve --port 8000
    """
    from service.web.serve import run

    settings = _settings()
    port = settings.port if port is None else _option("--port", "port", port)
    for instance in settings.instances():
        instance.signing_secrets()  # refuse to start without a secret, naming the variable
    run(settings, host=host or settings.host, port=port)


@cli.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Stop once the queue is empty.")] = False,
) -> None:
    """Run the arq worker that applies events to the replica.

    Example: REDIS_URL=redis://localhost:6379/0 clerk-replica worker
    """
    from service.queue.worker import run_forever

    settings = _settings()
    process.tune_gc()
    run_forever(settings, burst=burst)


@cli.command()
def replay(
    svix_id: Annotated[str | None, typer.Option("--id", help="Only this svix-id.")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Only events received at or after this time (UTC).")
    ] = None,
    reapply: Annotated[
        bool,
        typer.Option(
            "--reapply",
            help="Also re-apply events already applied (after a fix in how payloads map to "
            "rows). Safe: the ordering rules keep newer data.",
        ),
    ] = False,
) -> None:
    """Re-queue failed events (after fixing what made them fail), or re-apply stored ones.

    Examples: clerk-replica replay;  clerk-replica replay --id msg_2abc;
    clerk-replica replay --reapply --since 2026-11-01
    """
    from service.operate.actions import replay_events

    settings = _settings()
    count = asyncio.run(replay_events(settings, svix_id=svix_id, since=since, reapply=reapply))
    kind = "stored" if reapply else "failed"
    typer.echo(f"re-queued {count} {kind} event(s)")


@cli.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Replica counts, inbox backlog and failures, last reconcile, queue depth.

    Examples: clerk-replica status;  clerk-replica status --json | jq .inbox.backlog
    """
    from pathlib import Path

    from service.dev import runtime
    from service.operate.actions import collect_status

    settings = _settings()
    running = runtime.read(Path(settings.dev_state_dir))
    if "redis_url" not in settings.model_fields_set and running.get("redis_url"):
        settings = settings.model_copy(update={"redis_url": running["redis_url"]})
    report = asyncio.run(collect_status(settings))
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    from service.operate.status_view import print_status

    print_status(report)


@cli.command()
def dev(
    host: Annotated[str, typer.Option(help="Interface for the web app.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the web app.")] = 8000,
) -> None:
    """Run everything locally on embedded defaults: SQLite, an embedded Redis, web and worker.

    DATABASE_URL and REDIS_URL win when set. Ctrl-C stops everything it started.

    Example: clerk-replica dev --port 8000
    """
    from pathlib import Path

    from service.dev.stack import Stack

    settings = _settings()
    port = _option("--port", "port", port)
    raise SystemExit(
        Stack(settings, host=host, port=port, state_dir=Path(settings.dev_state_dir)).run()
    )


@cli.command("send-test-event")
def send_test_event(
    event_type: Annotated[
        str | None, typer.Argument(help="An event type, e.g. user.created (see --list).")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            help="Webhook URL (default: the running `dev`, else http://127.0.0.1:$PORT/...)."
        ),
    ] = None,
    list_types: Annotated[bool, typer.Option("--list", help="List the event types.")] = False,
    instance: Annotated[
        str | None,
        typer.Option(
            help="A CLERK_INSTANCES name: signed with its secret, to /webhooks/clerk/NAME."
        ),
    ] = None,
) -> None:
    """Sign and POST one of Clerk's published example events to a running instance.

    Uses CLERK_WEBHOOK_SIGNING_SECRET (CLERK_<NAME>_... with --instance), or the secret
    `clerk-replica dev` generated.

    Examples: clerk-replica send-test-event --list;  clerk-replica send-test-event user.created
    """
    from service.dev.examples import event_types
    from service.dev.send import send_to_running

    if list_types or event_type is None:
        typer.echo("\n".join(event_types()))
        return
    if event_type not in event_types():
        raise ConfigError(
            f"no example for {event_type!r}: see clerk-replica send-test-event --list"
        )
    settings = get_settings()
    if instance is not None:
        settings = settings.for_instance(instance)
    response = send_to_running(settings, event_type, url)
    typer.echo(f"{response.status_code} {response.text.strip()}")
    if response.status_code >= 300:
        raise SystemExit(1)


@cli.command()
def reconcile(
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="Limit to these kinds (repeatable), e.g. --only users; an unknown one "
            "prints the list.",
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
    instance: Annotated[
        list[str] | None,
        typer.Option(
            "--instance",
            help="Only these CLERK_INSTANCES names (repeatable); default: every instance.",
        ),
    ] = None,
) -> None:
    """Make the replica equal to Clerk through the Backend API: backfill, update, tombstone.

    Each instance is reconciled in turn, with its own key; only its own rows can be
    tombstoned. Exits 0 only when every requested type of every instance completed.

    Examples: clerk-replica reconcile --dry-run;  clerk-replica reconcile --only users;
    clerk-replica reconcile --instance staging
    """
    from service.reconcile.clerk_api import ClerkAuthError
    from service.reconcile.console import print_summary, progress_display
    from service.reconcile.lock import AlreadyRunning, LeaseLost
    from service.reconcile.options import ReconcileOptions, listed_kinds
    from service.reconcile.session import run_reconciles

    settings = _settings()
    names = list(instance or ()) or settings.instance_names()
    for name in names:
        settings.for_instance(name).clerk_key()  # unknown names and missing keys stop here
    kinds = listed_kinds()
    unknown = sorted(set(only or ()) - set(kinds))
    if unknown:
        raise ConfigError(f"unknown type(s) {', '.join(unknown)}: choose from {', '.join(kinds)}")
    options = ReconcileOptions(
        resources=tuple(only) if only else kinds,
        dry_run=dry_run,
        force=force,
        confirm_deletions=settings.reconcile_confirm_deletions if confirm is None else confirm,
        restart=restart,
    )
    try:
        with progress_display() as on_progress:
            reports = process.run(run_reconciles(settings, options, on_progress, names))
    except (ClerkAuthError, AlreadyRunning, LeaseLost) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    for report in reports:
        print_summary(report)
    raise SystemExit(0 if all(r.ok for r in reports) else 1)


@cli.command("readonly-sql")
def readonly_sql_command(
    role: Annotated[str, typer.Argument(help="The role app readers connect as.")],
    schema: Annotated[
        str | None,
        typer.Option(help="Schema holding the replica tables (default: REPLICA_SCHEMA)."),
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Run it against DATABASE_URL (PostgreSQL).")
    ] = False,
) -> None:
    """Print (or apply) SQL giving a role SELECT on the replica tables and nothing else.

    Examples: clerk-replica readonly-sql app_reader | psql "$DATABASE_URL";
    clerk-replica readonly-sql app_reader --apply
    """
    from service.operate.readonly import readonly_sql, readonly_statements

    try:
        settings = _settings()
        fdw_schema, schema = settings.clerk_fdw_schema, schema or settings.replica_schema
        sql = readonly_sql(role, schema=schema, fdw_schema=fdw_schema)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not apply:
        typer.echo(sql, nl=False)
        return
    from service.operate.actions import run_sql

    statements = readonly_statements(role, schema=schema, fdw_schema=fdw_schema)
    asyncio.run(run_sql(settings, statements))
    typer.echo(f"granted read-only access to the replica tables to {role}")


@cli.command()
def changes(
    since: Annotated[int, typer.Option(help="Only changes with a seq above this.")] = 0,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new changes (Ctrl-C stops).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Print the change feed (clerk_replica_changes) in seq order, ids and times only.

    Examples: clerk-replica changes --since 1200;  clerk-replica changes -f --json | jq .object_id
    """
    from service.db.engine import create_engine
    from service.operate.changes import line, print_changes

    settings = _settings()

    def emit(row: dict[str, object]) -> None:
        typer.echo(json.dumps(row, default=str) if as_json else line(row))

    async def run() -> None:
        engine = create_engine(settings)
        try:
            await print_changes(engine, emit, since=since, follow=follow)
        finally:
            await engine.dispose()

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends --follow
        asyncio.run(run())


def main() -> None:
    """Errors are one clear line; LOG_LEVEL=debug shows the traceback too."""
    try:
        cli()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    except Exception as exc:
        from service.db.errors import describe

        if logging.getLogger().isEnabledFor(logging.DEBUG):
            traceback.print_exc()
        typer.echo(f"error: {describe(exc)}", err=True)
        raise SystemExit(1) from None
