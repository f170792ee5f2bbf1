"""`clerk-replica dev`, driven as a user would: start it, send test events, read them back
with `status --json`, stop it with SIGINT, and check nothing it started is left running."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from service.dev.ports import free_port
from tests.support.commands import CLI, env
from tests.support.signing import SECRET


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], cwd=cwd, env=env(), capture_output=True, text=True, timeout=60
    )


def start_dev(cwd: Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    proc = subprocess.Popen(
        [CLI, "dev", "--port", str(port), *args],
        cwd=cwd,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, "dev did not become ready"
        time.sleep(0.2)


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    # No DATABASE_URL, REDIS_URL or secrets: the embedded defaults.
    proc, port = start_dev(tmp_path)
    try:
        yield proc, port, tmp_path
    finally:
        if proc.poll() is None:
            proc.kill()


def wait_for(predicate: object, cwd: Path, timeout: float = 30) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while True:
        result = cli("status", "--json", cwd=cwd)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        if predicate(report):  # type: ignore[operator]
            return report  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, report
        time.sleep(0.3)


def test_dev_runs_everything_and_stops_cleanly(
    dev: tuple[subprocess.Popen[str], int, Path],
) -> None:
    proc, port, cwd = dev
    started = psutil.Process(proc.pid).children(recursive=True)
    assert len(started) >= 3  # web, worker, embedded Redis

    listed = cli("send-test-event", "--list", cwd=cwd)
    assert "user.created" in listed.stdout and "organizationMembership.created" in listed.stdout
    for event_type in (
        "user.created",
        "organization.created",
        "organizationMembership.created",
        "email.created",  # acknowledged and ignored: a message, not state
    ):
        sent = cli("send-test-event", event_type, cwd=cwd)  # finds the running dev by itself
        assert sent.returncode == 0 and sent.stdout.startswith("200"), sent.stdout + sent.stderr

    report = wait_for(lambda r: r["inbox"]["by_status"]["applied"] == 3, cwd)
    assert report["replica"]["clerk_users"] == {"live": 1, "tombstoned": 0}
    assert report["replica"]["clerk_organization_memberships"]["live"] == 1
    assert report["inbox"]["by_status"]["ignored"] == 1 and report["inbox"]["backlog"] == 0
    # Reachable; not necessarily 0: the sweep's cron job may sit in the queue for a moment.
    assert report["queue"]["error"] is None and isinstance(report["queue"]["depth"], int)

    sent = cli("send-test-event", "user.deleted", cwd=cwd)
    assert sent.returncode == 0
    wait_for(lambda r: r["replica"]["clerk_users"] == {"live": 0, "tombstoned": 1}, cwd)

    secret_file = cwd / ".clerk-replica" / "signing-secret"
    assert secret_file.read_text().startswith("whsec_")
    assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert (
        'clerk_replica_deliveries_total{instance="default",outcome="accepted",reason=""} 4.0'
        in metrics
    )
    assert 'clerk_replica_inbox_events{status="applied"} 4.0' in metrics

    # Every command finds the running dev's database and Redis, and says so.
    state = json.loads((cwd / ".clerk-replica" / "dev.json").read_text())
    assert state["database_url"] == "sqlite:///./clerk-replica.db"
    assert report["workers"]["alive"] == 1 and report["workers"]["error"] is None
    replayed = cli("replay", cwd=cwd)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip() == "nothing to re-queue: no failed events"
    for part, url in (("database", state["database_url"]), ("redis", state["redis_url"])):
        assert f"using {part}: {url} (the running `clerk-replica dev` (pid {proc.pid}))" in (
            replayed.stderr
        )
    missing = cli("replay", "--id", "msg_nope", cwd=cwd)
    assert missing.returncode == 1
    assert "error: no such failed event: msg_nope" in missing.stderr

    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "webhook URL     http://127.0.0.1:" in out and "signing secret  generated" in out
    assert "clerk-replica dev: stopped" in out
    time.sleep(0.5)
    assert [p.pid for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    assert not (cwd / ".clerk-replica" / "dev.json").exists()
    assert secret_file.read_text().strip() not in out  # the banner says where, not what


def test_dev_secret_persists_and_env_wins(tmp_path: Path) -> None:
    from service.dev.secret import load_or_create

    first, path = load_or_create(tmp_path)
    again, _ = load_or_create(tmp_path)
    assert first == again and path == tmp_path / "signing-secret"


def test_status_reports_an_unreachable_queue(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/r.db"
    assert (
        subprocess.run([CLI, "migrate"], env=env(database_url=db), capture_output=True).returncode
        == 0
    )
    result = subprocess.run(
        [CLI, "status", "--json"],
        cwd=tmp_path,
        env=env(
            database_url=db,
            redis_url=f"redis://127.0.0.1:{free_port()}/0",
            redis_timeout_seconds="0.5",
            clerk_webhook_signing_secret=SECRET,
            clerk_secret_key="sk_live_do_not_print_me",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["queue"]["depth"] is None and "Connect" in report["queue"]["error"]
    assert SECRET not in result.stdout + result.stderr
    assert "sk_live_do_not_print_me" not in result.stdout + result.stderr


def _redis_children_of(state_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "redis-server" in cmdline and str(state_dir) in cmdline:
            found.append(proc)
    return found


def test_a_failed_start_leaves_nothing_running(tmp_path: Path) -> None:
    dead = f"postgresql://app:S3cretPassw0rd@127.0.0.1:{free_port()}/app"
    result = subprocess.run(
        [CLI, "dev", "--port", str(free_port())],
        cwd=tmp_path,
        env=env(database_url=dead, db_connect_timeout_seconds="1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.startswith("error:") and "Traceback" not in result.stderr
    assert "S3cretPassw0rd" not in result.stdout + result.stderr
    assert _redis_children_of(tmp_path / ".clerk-replica") == []


def test_closing_the_terminal_stops_everything(
    dev: tuple[subprocess.Popen[str], int, Path],
) -> None:
    proc, _port, _cwd = dev
    started = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGHUP)
    proc.communicate(timeout=60)
    time.sleep(0.5)
    assert [p.pid for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []


def test_the_banner_never_shows_a_password() -> None:
    from service.dev.stack import _without_password

    shown = _without_password("postgresql://app:S3cretPassw0rd@db.internal/app")
    assert "S3cretPassw0rd" not in shown and "db.internal" in shown


def stop_dev(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


def test_dev_demo_fills_the_replica_and_reset_starts_over(tmp_path: Path) -> None:
    proc, _ = start_dev(tmp_path, "--demo")
    try:
        wait_for(lambda r: r["replica"]["clerk_users"] == {"live": 2, "tombstoned": 0}, tmp_path)
        report = wait_for(lambda r: r["inbox"]["backlog"] == 0, tmp_path)
        assert report["replica"]["clerk_organization_memberships"]["live"] == 2
        assert report["replica"]["clerk_organization_invitations"]["live"] == 1
        for event_type in ("user.created", "user.deleted"):  # Clerk's example user, gone
            assert cli("send-test-event", event_type, cwd=tmp_path).returncode == 0
        wait_for(lambda r: r["replica"]["clerk_users"] == {"live": 2, "tombstoned": 1}, tmp_path)
    finally:
        out = stop_dev(proc)
    assert "sent the demo world" in out

    proc, _ = start_dev(tmp_path, "--reset")
    try:
        wait_for(lambda r: r["replica"]["clerk_users"] == {"live": 0, "tombstoned": 0}, tmp_path)
        assert cli("send-test-event", "user.created", cwd=tmp_path).returncode == 0
        wait_for(lambda r: r["replica"]["clerk_users"] == {"live": 1, "tombstoned": 0}, tmp_path)
    finally:
        out = stop_dev(proc)
    assert "reset: removed clerk-replica.db" in out
