"""`clerk-replica reconcile` as a user runs it: the summary table, one clear line per error, and
the exit status."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.support.clerk_instances import populate
from tests.support.commands import CLI, env, reconcile_cli
from tests.support.fake_clerk import KEY, FakeClerk


@pytest.fixture
def fake() -> FakeClerk:
    fake = FakeClerk()
    populate(fake, users=30, orgs=3, members_per_org=2)
    return fake


@pytest.fixture
def migrated_sqlite(sqlite_db_url: str) -> str:
    return sqlite_db_url


def test_reconcile_prints_a_summary_and_exits_zero(migrated_sqlite: str, clerk_url: str) -> None:
    dry = reconcile_cli("--dry-run", database_url=migrated_sqlite, clerk_url=clerk_url)
    assert dry.returncode == 0, dry.stderr
    assert "dry run" in dry.stdout
    assert re.search(r"users\s+│\s+completed\s+│\s+30\s+│\s+0\s+│", dry.stdout), dry.stdout

    real = reconcile_cli("--kind", "users", database_url=migrated_sqlite, clerk_url=clerk_url)
    assert real.returncode == 0, real.stderr
    assert "organizations" not in real.stdout
    assert re.search(r"users\s+│\s+completed\s+│\s+30\s+│", real.stdout), real.stdout
    for column in ("created", "updated", "unchanged", "tombstoned", "requests", "429s", "seconds"):
        assert column in real.stdout
    # Not a terminal: progress is plain log lines, and they carry no personal data.
    assert "reconcile.progress" in real.stderr and "@example.org" not in real.stderr
    assert KEY not in real.stdout + real.stderr
    assert "full (no complete run of these kinds to count from)" in real.stdout

    # The next run counts from that one (asked with --only, the old spelling of --kind);
    # --full lists everything again.
    nightly = reconcile_cli("--only", "users", database_url=migrated_sqlite, clerk_url=clerk_url)
    assert nightly.returncode == 0, nightly.stderr
    assert "organizations" not in nightly.stdout and "--only is now --kind" in nightly.stderr
    assert re.search(r"incremental \(.*\), 2 requests", nightly.stdout), nightly.stdout
    assert re.search(r"users\s+│\s+completed\s+│\s+0\s+│.*│\s+incremental", nightly.stdout)
    again = reconcile_cli(
        "--kind", "users", "--full", database_url=migrated_sqlite, clerk_url=clerk_url
    )
    assert again.returncode == 0 and "full (asked for (--full))" in again.stdout, again.stdout


def test_reconcile_errors_are_one_clear_line(migrated_sqlite: str, clerk_url: str) -> None:
    bad_key = reconcile_cli(database_url=migrated_sqlite, clerk_url=clerk_url, key="sk_test_nope")
    assert bad_key.returncode == 1
    assert "error: Clerk rejected CLERK_SECRET_KEY" in bad_key.stderr
    assert "Traceback" not in bad_key.stderr and "sk_test_nope" not in bad_key.stderr

    unknown = reconcile_cli("--kind", "sessions", database_url=migrated_sqlite, clerk_url=clerk_url)
    assert unknown.returncode == 2 and "unknown kind(s) sessions" in unknown.stderr

    no_key = subprocess.run(
        [CLI, "reconcile"], env=env(database_url=migrated_sqlite), capture_output=True, text=True
    )
    assert no_key.returncode == 2 and "CLERK_SECRET_KEY is not set" in no_key.stderr


def test_failed_kind_means_nonzero_exit(
    migrated_sqlite: str, clerk_url: str, fake: FakeClerk
) -> None:
    from tests.support.fake_clerk import error

    fake.on_list = lambda name, _params: (
        error(500, "internal_clerk_error", "boom") if name == "domains" else None
    )
    result = reconcile_cli(
        database_url=migrated_sqlite, clerk_url=clerk_url, reconcile_max_attempts="2"
    )
    assert result.returncode == 1
    assert re.search(r"domains\s+│\s+failed", result.stdout)
    assert re.search(r"users\s+│\s+completed", result.stdout)
