"""Reconcile as whole processes: flat memory from 10k to 100k users, and a killed run that
resumes once its lease expires."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.support.clerk_instances import SyntheticUsers, populate
from tests.support.commands import CLI, env, reconcile_cli
from tests.support.fake_clerk import KEY, FakeClerk, serve
from tests.support.measured import REPORT


@pytest.fixture
def fake() -> FakeClerk:
    fake = FakeClerk()
    populate(fake, users=30, orgs=3, members_per_org=2)
    return fake


@pytest.fixture
def migrated_sqlite(sqlite_db_url: str) -> str:
    return sqlite_db_url


def peak_rss_mib(database_url: str, clerk_url: str) -> tuple[float, str]:
    """Run the real command in its own process and read its own peak RSS at exit."""
    code = (
        "import atexit, re, sys\n"
        # VmHWM is this process image's peak; ru_maxrss would carry the forking parent's.
        "peak = lambda: re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
        "atexit.register(lambda: print('PEAK_RSS_KIB', peak(), file=sys.stderr))\n"
        "from service.cli import main\n"
        "sys.argv = ['clerk-replica', 'reconcile', '--kind', 'users']\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env(
            database_url=database_url,
            clerk_secret_key=KEY,
            clerk_api_url=clerk_url,
            reconcile_max_requests_per_10s="100000",
        ),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    match = re.search(r"PEAK_RSS_KIB (\d+)", result.stderr)
    assert match, result.stderr[-2000:]
    return int(match.group(1)) / 1024, result.stdout


@pytest.mark.slow
def test_memory_stays_flat_from_10k_to_100k_users(pg_url: str, tmp_path: Path) -> None:
    """Measured, not guessed: peak RSS of the reconcile process at 10k and 100k users."""
    from tests.support.databases import truncate_pg

    peaks = {}
    for n in (10_000, 100_000):
        truncate_pg(pg_url)
        fake = FakeClerk(users=SyntheticUsers(n))
        with serve(fake) as url:
            peaks[n], out = peak_rss_mib(pg_url, url)
        assert re.search(rf"users\s+│\s+completed\s+│\s+{n}\s+│", out), out
    REPORT.append(
        f"reconcile --kind users, peak RSS: 10k users {peaks[10_000]:.0f} MiB, "
        f"100k users {peaks[100_000]:.0f} MiB (ratio {peaks[100_000] / peaks[10_000]:.2f})"
    )
    assert peaks[100_000] < 150
    assert peaks[100_000] < peaks[10_000] * 1.25  # 10x the users, not 10x the memory


def test_a_killed_reconcile_resumes_after_its_lease_expires(
    migrated_sqlite: str, clerk_url: str, fake: FakeClerk
) -> None:
    populate(fake, users=400, orgs=1, members_per_org=1)
    stalled = threading.Event()

    def stall_on_third_users_page(name: str, params: dict[str, str]) -> None:
        if name == "users" and len(fake.requests_to("users")) == 2 and not stalled.is_set():
            stalled.set()
            time.sleep(3)

    fake.on_list = stall_on_third_users_page
    # One walk, as scripted here (the measured count could split the users on a busy machine).
    extra = {
        "reconcile_page_size": "100",
        "reconcile_lock_ttl_seconds": "10",
        "reconcile_concurrency": "1",
    }
    proc = subprocess.Popen(
        [CLI, "reconcile", "--kind", "users"],
        env=env(
            database_url=migrated_sqlite,
            clerk_secret_key=KEY,
            clerk_api_url=clerk_url,
            reconcile_max_requests_per_10s="10000",
            **extra,
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert stalled.wait(30)
    # Page 3 is fetched while page 2 is written: kill once page 2 is committed.
    database = migrated_sqlite.removeprefix("sqlite:///")
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        with closing(sqlite3.connect(database)) as db:
            (saved,) = db.execute(
                'SELECT max("offset") FROM clerk_replica_reconcile_progress'
            ).fetchone()
        if saved is not None and saved >= 200:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # no cleanup at all: the lease and the run stay behind
    proc.wait(10)

    busy = reconcile_cli(
        "--kind", "users", database_url=migrated_sqlite, clerk_url=clerk_url, **extra
    )
    assert busy.returncode == 1 and "another process holds" in busy.stderr

    time.sleep(10.5)  # the dead process's lease expires
    before = len(fake.requests_to("users"))
    resumed = reconcile_cli(
        "--kind", "users", database_url=migrated_sqlite, clerk_url=clerk_url, **extra
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "(resumed)" in resumed.stdout
    cursors = [r.params.get("starting_after") for r in fake.requests_to("users")[before:]]
    assert cursors[0] == "user_00199"  # two pages were committed before the kill
    assert re.search(r"users\s+│\s+completed\s+│\s+400\s+│", resumed.stdout), resumed.stdout
