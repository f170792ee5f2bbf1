"""The Drizzle schema against the real tools: the PostgreSQL schema and a program using it
compile under `tsc --strict` and the program reads a replica the service filled through
webhooks, following `user` and `organization` from each membership; the SQLite one compiles."""

from __future__ import annotations

import json
import os
from pathlib import Path

from service.schema.drizzle import drizzle_schema
from service.schema.model import replica
from service.schema.target import Target
from tests.schema.conftest import (
    NODE_DIR,
    doc_example,
    expected_memberships,
    fill_through_webhooks,
    node_workdir,
    run_tool,
)
from tests.support.databases import libpq_url


async def test_the_postgresql_schema_compiles_and_reads_a_filled_replica(
    tmp_path: Path, node_modules: Path, pg_db_url: str, redis_url: str
) -> None:
    people = await fill_through_webhooks(pg_db_url, redis_url)
    files = {
        "schema.ts": drizzle_schema(replica(), Target.POSTGRESQL),
        "memberships.ts": (NODE_DIR / "memberships.ts").read_text(),
    }
    work = node_workdir(tmp_path, node_modules, files)
    run_tool(work, "node", "node_modules/typescript/bin/tsc", "-p", ".")
    env = {"DATABASE_URL": libpq_url(pg_db_url), "PATH": os.environ["PATH"]}
    out = run_tool(work, "node", "build/memberships.js", env=env)
    read = json.loads(out)
    assert read["memberships"] == expected_memberships(people)
    assert [u["id"] for u in read["liveUsers"]] == sorted(u["id"] for u in people.users)
    members = {o["id"]: sorted(o["members"]) for o in read["organizations"]}
    assert members == {
        "org_acme": ["user_jane", "user_omar"],
        "org_globex": ["user_jane", "user_never_arrived", "user_omar"],  # orgmem_5 ended
    }


async def test_the_documented_example_runs(
    tmp_path: Path, node_modules: Path, pg_db_url: str, redis_url: str
) -> None:
    people = await fill_through_webhooks(pg_db_url, redis_url)
    files = {
        "clerk-replica.ts": drizzle_schema(replica(), Target.POSTGRESQL),
        "example.ts": doc_example("drizzle.md", "ts"),
    }
    work = node_workdir(tmp_path, node_modules, files)
    run_tool(work, "node", "node_modules/typescript/bin/tsc", "-p", ".")
    env = {"DATABASE_URL": libpq_url(pg_db_url), "PATH": os.environ["PATH"]}
    jane = people.users[0]
    read = json.loads(run_tool(work, "node", "build/example.js", jane["id"], env=env))
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


SQLITE_PROGRAM = """
import { drizzle } from "drizzle-orm/sqlite-proxy";
import * as schema from "./schema.js";

// Typed only (tsc): no SQLite driver runs here.
const db = drizzle(async () => ({ rows: [] }), { schema });
export async function members(organizationId: string): Promise<string[]> {
  const found = await db.query.clerkOrganizationMemberships.findMany({
    where: (m, { and, eq, isNull }) =>
      and(eq(m.organizationId, organizationId), isNull(m.deletedAt)),
    with: { user: { with: { emailAddresses: true } }, organization: true },
  });
  const live = await db.select().from(schema.clerkUsersLive);
  const created: Date | null = live[0]?.createdAt ?? null;
  const metadata: unknown = found[0]?.publicMetadata;
  const admin: boolean | null = found[0]?.user?.banned ?? null;
  console.log(created, metadata, admin);
  return found.map((m) => `${m.user?.firstName} ${m.organization?.slug}`);
}
"""


def test_the_sqlite_schema_compiles(tmp_path: Path, node_modules: Path) -> None:
    files = {"schema.ts": drizzle_schema(replica(), Target.SQLITE), "check.ts": SQLITE_PROGRAM}
    work = node_workdir(tmp_path, node_modules, files)
    run_tool(work, "node", "node_modules/typescript/bin/tsc", "-p", ".")


def test_names_follow_the_issue_rules() -> None:
    source = drizzle_schema(replica(), Target.POSTGRESQL)
    assert (
        'export const clerkOrganizationMemberships = pgTable("clerk_organization_memberships"'
        in source
    )
    assert 'userId: text("user_id"),' in source
    assert "user: one(clerkUsers, { fields: [clerkOrganizationMemberships.userId]" in source
    assert "organizationMemberships: many(clerkOrganizationMemberships)," in source
    assert "emailAddresses: many(clerkEmailAddresses)," in source
    assert 'pgView("clerk_users_live"' in source
