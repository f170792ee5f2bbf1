"""The clerk-replica command line. Each command is a thin shell over the part
that does the work (operate, reconcile, queue, web, dev), importing it only when run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import traceback
from datetime import datetime
from typing import Annotated, Any, NoReturn

import typer

from service import process
from service.config import ConfigError, Settings, get_settings
from service.logs import configure_logging
from service.schema.target import Format, Target

cli = typer.Typer(
    help="Keep an app database in sync with Clerk.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"clerk-replica {version('clerk-replica')}")
        raise typer.Exit()


@cli.callback()
def _startup(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_show_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Keep an app database in sync with Clerk."""
    from service.config import lookalike_variables

    for variable, advice in lookalike_variables():
        typer.echo(f"warning: {variable} is not a clerk-replica setting: {advice}", err=True)


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(settings)
    return settings


def _located(*, service: bool = False) -> Settings:
    """Settings for a command that talks to the database or Redis: a running `dev`'s URLs
    unless DATABASE_URL / REDIS_URL are set (service/dev/locate.py), named on stderr (in the
    log of the long-running `serve` and `worker`, once they have started). A DATABASE_URL of
    no use stops it first."""
    from service.db.engine import async_url
    from service.dev.locate import located

    settings, used = located(_settings())
    async_url(settings.database.url)  # an unusable URL is the one line to say
    if not service:
        for line in used:
            typer.echo(f"using {line}", err=True)
    return settings


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise SystemExit(1)


def _schema_problem(settings: Settings) -> str | None:
    """Why the database is not at the latest migration (None: it is, or it did not answer:
    serve and worker ride out an outage, and other commands meet it at their first query)."""
    from service.db.engine import create_engine
    from service.operate.migrate import SchemaBehind, require_latest

    async def check() -> str | None:
        engine = create_engine(settings)
        try:
            await require_latest(engine)
        except SchemaBehind as exc:
            return str(exc)
        except Exception:
            return None
        finally:
            await engine.dispose()
        return None

    return asyncio.run(check())


def _option(flag: str, variable: str, value: Any) -> Any:
    """A command-line option checked as the environment variable it stands for is (the same
    Settings field, the same limits): `serve --port 99999` is refused like PORT=99999."""
    from pydantic import TypeAdapter, ValidationError

    from service.config import setting

    info = setting(variable).info
    try:
        checked: TypeAdapter[Any] = TypeAdapter(Annotated[info.annotation, *info.metadata])  # type: ignore[arg-type]
        return checked.validate_python(value)
    except ValidationError as exc:
        raise ConfigError(f"{flag}: {exc.errors()[0]['msg']}") from None


@cli.command()
def migrate() -> None:
    """Apply database migrations (alembic upgrade head).

    Example: DATABASE_URL=postgres://app@db/app clerk-replica migrate
    """
    from service.operate.migrate import upgrade

    settings = _located()
    upgrade(settings.database.url)
    typer.echo("database is at the latest schema")


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (env HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (env PORT).")] = None,
) -> None:
    """Run the web app that receives Clerk webhooks at POST /webhooks/clerk.

    GET /metrics is served on the same port, or with METRICS_PORT set on that port only; with
    CONSOLE_TOKEN set, so is the operator's console at /console.

    Example: CLERK_WEBHOOK_SIGNING_SECRET=whsec_... clerk-replica serve --port 8000
    """
    from service.web.serve import run

    settings = _located(service=True)
    port = settings.web.port if port is None else _option("--port", "PORT", port)
    settings.instance_ids()  # refuse one Clerk instance id given to two names
    for instance in settings.instances():
        instance.signing_secrets()  # refuse to start without a secret, naming the variable
    if (problem := _schema_problem(settings)) is not None:
        # Serve anyway: /readyz says not ready with the reason until `migrate` has run.
        typer.echo(f"warning: {problem} (deliveries get 503 until then)", err=True)
    run(settings, host=host or settings.web.host, port=port)


@cli.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Stop once the queue is empty.")] = False,
) -> None:
    """Run the arq worker that applies events to the replica.

    Example: REDIS_URL=redis://localhost:6379/0 clerk-replica worker
    """
    from service.queue.worker import run_forever

    settings = _located(service=True)
    if (problem := _schema_problem(settings)) is not None:
        _fail(problem)
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
    from service.operate.actions import NotDone, replay_events

    settings = _located()
    try:
        count = asyncio.run(replay_events(settings, svix_id=svix_id, since=since, reapply=reapply))
    except NotDone as exc:
        _fail(str(exc))
    kind = "stored" if reapply else "failed"
    if count == 0:
        typer.echo(f"nothing to re-queue: no {kind} events" + (" since then" if since else ""))
        return
    typer.echo(f"re-queued {count} {kind} event(s)")


@cli.command("inspect")
def inspect_command(
    svix_id: Annotated[str, typer.Argument(help="The event's svix-id (msg_...).")],
    body: Annotated[
        bool, typer.Option("--body", help="Also print the stored body (it holds personal data).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show one inbox event: its status, type, object, times, attempts and last error; its
    body only with --body.

    Examples: clerk-replica inspect msg_2abc;  clerk-replica inspect msg_2abc --body
    """
    from service.operate.actions import inspect_event

    settings = _located()
    found = asyncio.run(inspect_event(settings, svix_id))
    if found is None:
        _fail(f"no such event: {svix_id}")
    stored = found.pop("body")
    shown: dict[str, object] = dict(found)
    if stored is None:
        shown["body"] = "not kept (forgotten: retention, erasure, discard; ignored types keep none)"
    elif body:
        shown["body"] = stored
        if as_json:
            with contextlib.suppress(ValueError):
                shown["body"] = json.loads(stored)
    else:
        shown["body"] = "kept (holds personal data): add --body to print it"
    if as_json:
        typer.echo(json.dumps(shown, indent=2, default=str))
        return
    for key, value in shown.items():
        typer.echo(f"{key:<20}{'' if value is None else value}")


@cli.command()
def discard(
    svix_id: Annotated[str, typer.Argument(help="The failed event's svix-id (msg_...).")],
) -> None:
    """Give up on a failed event that can never apply: recorded as discarded (its error
    kept), its body forgotten. Exits non-zero when no failed event has this id.

    Example: clerk-replica discard msg_2abc
    """
    from service.operate.actions import discard_event

    settings = _located()
    if not asyncio.run(discard_event(settings, svix_id)):
        _fail(f"no such failed event: {svix_id}")
    typer.echo(f"discarded {svix_id}: its body is forgotten")


@cli.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Replica counts, inbox backlog and failures, last reconcile, queue depth.

    Examples: clerk-replica status;  clerk-replica status --json | jq .inbox.backlog
    """
    from service.operate.actions import collect_status

    settings = _located()
    if (problem := _schema_problem(settings)) is not None:
        _fail(problem)
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
    demo: Annotated[
        bool,
        typer.Option("--demo", help="Once up, send the demo world (see send-test-event --demo)."),
    ] = False,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="Start over with an empty replica: delete the SQLite database and the "
            "embedded Redis's data first (the signing secret is kept).",
        ),
    ] = False,
) -> None:
    """Run everything locally on embedded defaults: SQLite, an embedded Redis, web and worker.

    DATABASE_URL and REDIS_URL win when set. Ctrl-C stops everything it started.

    Examples: clerk-replica dev --port 8000;  clerk-replica dev --reset --demo
    """
    from pathlib import Path

    from service.dev.stack import Stack

    settings = _settings()
    port = _option("--port", "PORT", port)
    state_dir = Path(settings.dev.state_dir)
    stack = Stack(settings, host=host, port=port, state_dir=state_dir, demo=demo, reset=reset)
    raise SystemExit(stack.run())


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
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Send a small world whose ids refer to each other (users, an organization "
            "with roles and members, an invitation, a session, a subscription); sending it "
            "again changes nothing.",
        ),
    ] = False,
) -> None:
    """Sign and POST one of Clerk's published example events to a running instance.

    Uses CLERK_WEBHOOK_SIGNING_SECRET (CLERK_<NAME>_... with --instance), or the secret
    `clerk-replica dev` generated.

    Examples: clerk-replica send-test-event --list;  clerk-replica send-test-event user.created;
    clerk-replica send-test-event --demo
    """
    from service.dev.examples import event_types
    from service.dev.send import NotListening, run_demo, send_to_running, target_of

    if demo:
        if event_type is not None or list_types:
            raise ConfigError("--demo sends its own events: leave out the event type and --list")
        settings = get_settings()
        if instance is not None:
            settings = settings.for_instance(instance)
        try:
            ok = run_demo(target_of(settings, url), typer.echo)
        except NotListening as exc:
            typer.echo(f"error: {exc}", err=True)
            raise SystemExit(1) from None
        raise SystemExit(0 if ok else 1)
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
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            metavar="KIND",
            help="Limit to these kinds (repeatable), e.g. --kind users; an unknown one "
            "prints the list.",
        ),
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", hidden=True, help="The old spelling of --kind.")
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
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="List everything, even when an incremental run (what changed since the last "
            "complete run) would do.",
        ),
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
    tombstoned. Exits 0 only when every requested kind of every instance completed. A run
    is incremental (lists what changed since the last complete run) unless the last full
    one is older than RECONCILE_FULL_EVERY_DAYS, the last run failed, or --full is given.

    Examples: clerk-replica reconcile --dry-run;  clerk-replica reconcile --kind users;
    clerk-replica reconcile --instance staging;  clerk-replica reconcile --full
    """
    from service.reconcile.clerk_api import ClerkAuthError
    from service.reconcile.lock import AlreadyRunning, LeaseLost
    from service.reconcile.modes import ReconcileOptions, listed_kinds
    from service.reconcile.run import run_reconciles
    from service.reconcile.terminal import print_summary, progress_display

    settings = _located()
    names = list(instance or ()) or settings.instance_names()
    for name in names:
        settings.for_instance(name).clerk_key()  # unknown names and missing keys stop here
    if only:
        typer.echo("note: --only is now --kind (the old spelling still works)", err=True)
    asked = [*(kind or ()), *(only or ())]
    kinds = listed_kinds()
    unknown = sorted(set(asked) - set(kinds))
    if unknown:
        raise ConfigError(f"unknown kind(s) {', '.join(unknown)}: choose from {', '.join(kinds)}")
    options = ReconcileOptions(
        kinds=tuple(asked) if asked else kinds,
        dry_run=dry_run,
        force=force,
        confirm_deletions=settings.reconcile.confirm_deletions if confirm is None else confirm,
        restart=restart,
        full=full,
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
        fdw_schema, schema = (
            settings.database.fdw_schema,
            schema or settings.database.replica_schema,
        )
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

    settings = _located()

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


@cli.command()
def schema(
    format_: Annotated[
        Format,
        typer.Option("--format", help="drizzle, prisma or sqlalchemy.", case_sensitive=False),
    ],
    dialect: Annotated[
        Target,
        typer.Option(
            help="The replica's database (SQLAlchemy's module serves either).", case_sensitive=False
        ),
    ] = Target.POSTGRESQL,
) -> None:
    """Print models of every replica table (and its _live view) for the app's own stack.

    Generated from the kinds' declarations, with the relations they declare (the replica has no
    foreign keys). Example: clerk-replica schema --format drizzle > src/db/clerk.ts
    """
    from service.schema.generate import generate

    typer.echo(generate(format_, dialect), nl=False)


@cli.command("config")
def config_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every setting in effect by its variable, where it came from, secrets masked.

    Keyed by environment variable, each with its source (environment or default), and the
    variables of each CLERK_INSTANCES instance too. Connects to nothing.

    Examples: clerk-replica config;  clerk-replica config --json | jq '.settings.DATABASE_URL'
    """
    from service.operate.config_view import config_json, config_text

    settings = get_settings()
    typer.echo(config_json(settings) if as_json else config_text(settings))


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
