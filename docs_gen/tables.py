"""The tables reference: every replica table (kind by kind, from the registry) and every table
the service keeps for itself, with their columns as PostgreSQL has them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Table
from sqlalchemy.dialects import postgresql

import service.feed.changes
import service.inbox.instances
import service.inbox.store
import service.reconcile.checkpoints
import service.reconcile.lock  # noqa: F401  (their tables join the shared metadata)
from docs_gen.markdown import code, page, table
from service.db.types import metadata
from service.kinds.declaration import Kind
from service.kinds.registry import KINDS, replica_tables

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]

# What a column's name and type do not say (a column's own `comment` wins). A note naming a
# table or column that does not exist fails the generator.
NOTES = {
    ("clerk_organization_memberships", "user_id"): "NULL until a payload names the member "
    "(the spec does not require public_user_data)",
    ("clerk_organization_memberships", "role"): "a role's key (clerk_roles.key)",
    ("clerk_organization_invitations", "organization_id"): "NULL until a payload names it",
    ("clerk_role_permissions", "id"): "role_id/permission_id",
    ("clerk_billing_plans", "created_at"): "NULL: Clerk sends none",
    ("clerk_billing_plans", "updated_at"): "its carrier's time, or when reconcile listed it",
    ("clerk_billing_payment_attempts", "statement_id"): "invoice_id in older API versions",
    ("clerk_billing_payment_attempts", "amount"): "the grand total",
    ("clerk_billing_subscriptions", "payer_id"): "a user or an organization; Clerk's empty "
    "string is stored NULL",
    ("clerk_users", "primary_email_address"): "the address of primary_email_address_id",
}


def _type(column: Column[Any]) -> str:
    return column.type.compile(dialect=_DIALECT).lower()


def _key(column: Column[Any], indexed: set[str]) -> str:
    if column.primary_key:
        return "primary key"
    if column.name in indexed or column.index or column.unique:
        return "indexed"
    return ""


def _columns(tbl: Table) -> str:
    indexed = {c.name for index in tbl.indexes for c in index.columns if isinstance(c, Column)}
    rows = [
        (
            code(c.name),
            _type(c),
            "" if c.nullable else "not null",
            _key(c, indexed),
            c.comment or NOTES.get((tbl.name, c.name), ""),
        )
        for c in tbl.columns
    ]
    return table(("column", "type", "null", "key", "note"), rows)


def _kind_facts(kind: Kind) -> list[str]:
    facts = [f"- kind `{kind.name}` (`reconcile --kind {kind.name}`)"]
    if kind.upserts:
        facts.append("- written by " + ", ".join(code(t) for t in kind.upserts))
    if kind.deletes:
        facts.append("- ended by " + ", ".join(code(t) for t in kind.deletes))
    for parent in kind.parents:
        facts.append(f"- ends with its `{parent.kind}` object (`{parent.column}`)")
    for owned in kind.owns:
        facts.append(
            f"- owns `{owned.table.name}` (by `{owned.owner_column}`): exactly the rows of "
            "the newest snapshot"
        )
    if kind.listing is not None:
        facts.append(f"- reconcile lists `GET /{kind.listing.path}`")
    else:
        facts.append("- webhook-only: reconcile does not list it")
    if kind.lookup is not None:
        facts.append(f"- a deletion candidate is looked up at `GET /{kind.lookup.path}`")
    for personal in kind.personals:
        columns = ", ".join(code(f"{c.table.name}.{c.name}") for c in personal.columns)
        keys = f" (keys {', '.join(code(k) for k in personal.keys)})" if personal.keys else ""
        facts.append(
            f"- personal data of the `{personal.person}` object its `{personal.column}` names: "
            f"{columns}{keys}"
        )
    if "deleted_at" in kind.table.c:
        facts.append(f"- live rows: the view `{kind.table.name}_live`")
    if kind.fdw is not None:
        facts.append(f"- clerk_fdw's `{kind.fdw.name}`: a view in `CLERK_FDW_SCHEMA`")
    return facts


def _check_notes() -> None:
    for table_name, column in NOTES:
        known = metadata.tables.get(table_name)
        if known is None or column not in known.c:
            raise KeyError(f"docs_gen/tables.py: NOTES names {table_name}.{column}, not a column")


def render() -> str:
    _check_notes()
    sections: list[str] = []
    for kind in KINDS:
        for number, tbl in enumerate(kind.tables):
            head = f"### `{tbl.name}`"
            owner = f"- owned by `{kind.table.name}`"
            facts = "\n".join(_kind_facts(kind)) if number == 0 else owner
            sections.append(f"{head}\n\n{facts}\n\n{_columns(tbl)}")
    replica = {t.name for t in replica_tables()}
    own = [t for t in metadata.sorted_tables if t.name not in replica]
    bookkeeping = [f"### `{t.name}`\n\n{_columns(t)}" for t in sorted(own, key=lambda t: t.name)]
    return page(
        "Tables",
        """
The replica tables are a contract your app's SQL reads. There are no foreign keys between
them (a membership may arrive before its user); every join column is indexed. Times are
timezone-aware UTC timestamps converted from Clerk's epoch milliseconds; JSON columns are
`jsonb` on PostgreSQL (JSON text on SQLite). `raw` holds the object as Clerk sent it.
`deleted_at` is a tombstone: live rows are `WHERE deleted_at IS NULL`, or the `_live` view.
`instance_id` is the Clerk instance (`ins_...`) a row came from. Every string is `text`: Clerk's
spec sets no lengths. A field Clerk's schema lets a payload leave out is NULL until a snapshot
or a reconcile fills it in. See [Ordering rules](../explanation/ordering.md) for how rows move.
""",
        "## Replica tables (one section per kind, in reconcile's order)\n\n"
        + "\n\n".join(sections),
        "## The service's own tables\n\nNot for apps: `readonly-sql` grants none of them except "
        "the change feed and `clerk_replica_instances`.\n\n" + "\n\n".join(bookkeeping),
    )
