"""The SQLAlchemy module against real databases: imported by a plain Python program (its own
process, nothing of clerk-replica imported), it reads a PostgreSQL and a SQLite replica the
service filled through webhooks, following relationships both ways, times timezone-aware."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from service.db.engine import async_url
from service.schema.model import replica
from service.schema.sqlalchemy_models import sqlalchemy_module
from tests.schema.conftest import doc_example, expected_memberships, fill_through_webhooks

PROGRAM = """
import asyncio, json, sys
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import selectinload
from clerk_replica_models import (
    ClerkOrganization, ClerkOrganizationMembership, ClerkUser, ClerkUserLive
)

def when(at):
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z") if at else None

async def main(url):
    engine = create_async_engine(url)
    M = ClerkOrganizationMembership
    async with AsyncSession(engine) as session:
        memberships = await session.scalars(
            select(M).where(M.deleted_at.is_(None)).order_by(M.id).options(
                selectinload(M.user).selectinload(ClerkUser.emailAddresses),
                selectinload(M.organization),
            )
        )
        out = {"memberships": [
            {
                "id": m.id, "role": m.role, "permissions": m.permissions,
                "user": m.user and {
                    "id": m.user.id, "firstName": m.user.first_name,
                    "emails": sorted(e.email_address for e in m.user.emailAddresses),
                    "createdAt": when(m.user.created_at),
                },
                "organization": m.organization and {
                    "id": m.organization.id, "slug": m.organization.slug
                },
            }
            for m in memberships
        ]}
        orgs = await session.scalars(
            select(ClerkOrganization).order_by(ClerkOrganization.id)
            .options(selectinload(ClerkOrganization.organizationMemberships))
        )
        out["organizations"] = {
            o.id: sorted(m.user_id for m in o.organizationMemberships) for o in orgs
        }
        live = await session.scalars(select(ClerkUserLive).order_by(ClerkUserLive.id))
        out["liveUsers"] = [u.id for u in live]
    await engine.dispose()
    print(json.dumps(out))

asyncio.run(main(sys.argv[1]))
assert not any(name.startswith("service") for name in sys.modules)
"""


def _run(tmp_path: Path, program: str, *args: str) -> str:
    """Run `program` beside the generated module, as its own process; its stdout."""
    (tmp_path / "clerk_replica_models.py").write_text(sqlalchemy_module(replica()))
    (tmp_path / "program.py").write_text(program)
    done = subprocess.run(
        [sys.executable, "-E", "program.py", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _read(tmp_path: Path, url: str) -> dict[str, object]:
    driver_url = async_url(url).render_as_string(hide_password=False)
    stdout = _run(tmp_path, PROGRAM, driver_url)
    found: dict[str, object] = json.loads(stdout)
    return found


async def test_a_plain_program_reads_the_replica_through_relationships(
    tmp_path: Path, db_url: str, redis_url: str
) -> None:
    people = await fill_through_webhooks(db_url, redis_url)
    read = _read(tmp_path, db_url)
    assert read["memberships"] == expected_memberships(people)
    assert read["organizations"] == {
        "org_acme": ["user_jane", "user_omar"],
        "org_globex": ["user_jane", "user_never_arrived", "user_omar"],
    }
    assert read["liveUsers"] == sorted(u["id"] for u in people.users)


async def test_the_documented_example_runs(tmp_path: Path, db_url: str, redis_url: str) -> None:
    people = await fill_through_webhooks(db_url, redis_url)
    jane = people.users[0]
    driver_url = async_url(db_url).render_as_string(hide_password=False)
    read = json.loads(
        _run(tmp_path, doc_example("sqlalchemy.md", "python"), driver_url, jane["id"])
    )
    assert read["name"] == jane["first_name"]
    assert read["emails"] == sorted(e["email_address"] for e in jane["email_addresses"])
    assert read["organizations"] == [
        {"slug": "acme", "role": "org:admin"},
        {"slug": "globex", "role": "org:member"},
    ]
    assert read["joined"] == [
        {"firstName": "Jane", "role": "org:admin", "organization": "Acme Inc"},
        {"firstName": "Jane", "role": "org:member", "organization": "Globex"},
    ]
    assert read["createdAt"] == "2024-05-28T08:00:00+00:00"  # aware, on SQLite too


def test_the_module_and_the_example_pass_mypy_strict(tmp_path: Path) -> None:
    (tmp_path / "clerk_replica_models.py").write_text(sqlalchemy_module(replica()))
    (tmp_path / "example.py").write_text(doc_example("sqlalchemy.md", "python"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "clerk_replica_models.py",
            "example.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
