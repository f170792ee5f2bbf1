// Reads a replica through the generated Drizzle schema (./schema.ts, PostgreSQL): every live
// membership with its user (and the user's email addresses) and its organization, followed by
// relational queries, and the live users through the `_live` view. Prints JSON for the test.
import { drizzle } from "drizzle-orm/node-postgres";
import { asc, isNull } from "drizzle-orm";
import pg from "pg";
import * as schema from "./schema.js";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
const db = drizzle(pool, { schema });

const memberships = await db.query.clerkOrganizationMemberships.findMany({
  where: (m) => isNull(m.deletedAt),
  orderBy: (m) => [asc(m.id)],
  with: { user: { with: { emailAddresses: true } }, organization: true },
});
const users = await db
  .select({ id: schema.clerkUsersLive.id, createdAt: schema.clerkUsersLive.createdAt })
  .from(schema.clerkUsersLive)
  .orderBy(asc(schema.clerkUsersLive.id));
const organizations = await db.query.clerkOrganizations.findMany({
  with: { organizationMemberships: true },
  orderBy: (o) => [asc(o.id)],
});

const out = {
  memberships: memberships.map((m) => ({
    id: m.id,
    role: m.role,
    permissions: m.permissions,
    user: m.user
      ? {
          id: m.user.id,
          firstName: m.user.firstName,
          emails: m.user.emailAddresses.map((e) => e.emailAddress ?? "").sort(),
          createdAt: m.user.createdAt?.toISOString() ?? null,
        }
      : null,
    organization: m.organization ? { id: m.organization.id, slug: m.organization.slug } : null,
  })),
  liveUsers: users.map((u) => ({ id: u.id, createdAt: u.createdAt?.toISOString() ?? null })),
  organizations: organizations.map((o) => ({
    id: o.id,
    members: o.organizationMemberships.map((m) => m.userId),
  })),
};
console.log(JSON.stringify(out));
await pool.end();
