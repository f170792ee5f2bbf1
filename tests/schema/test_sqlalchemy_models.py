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
from tests.schema.conftest import expected_memberships, fill_through_webhooks

PROGRAM = """
import asyncio, json, sys
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import selectinload
from clerk_models import ClerkOrganization, ClerkOrganizationMembership, ClerkUser, ClerkUserLive

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


def _read(tmp_path: Path, url: str) -> dict[str, object]:
    (tmp_path / "clerk_models.py").write_text(sqlalchemy_module(replica()))
    (tmp_path / "program.py").write_text(PROGRAM)
    driver_url = async_url(url).render_as_string(hide_password=False)
    done = subprocess.run(
        [sys.executable, "-E", "program.py", driver_url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, object] = json.loads(done.stdout)
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
