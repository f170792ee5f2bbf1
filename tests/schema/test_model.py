"""The registry read as tables, links and views, and the naming rules every format follows."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, LargeBinary, MetaData, Table, Text

from service.kinds.registry import KINDS, replica_tables
from service.operate.migrate import head_revision
from service.schema.model import (
    Link,
    Replica,
    Storage,
    TableSpec,
    camel,
    pascal_singular,
    replica,
    singular,
    storage_of,
    table_spec,
)


def test_names() -> None:
    assert camel("clerk_organization_memberships") == "clerkOrganizationMemberships"
    assert pascal_singular("clerk_organization_memberships") == "ClerkOrganizationMembership"
    assert pascal_singular("clerk_email_addresses") == "ClerkEmailAddress"
    assert pascal_singular("clerk_waitlist_entries") == "ClerkWaitlistEntry"
    assert singular("users") == "user"
    assert singular("access") == "access"


def test_every_replica_table_and_declared_link_is_described() -> None:
    described = replica()
    assert [t.name for t in described.tables] == [t.name for t in replica_tables()]
    declared = sum(len(k.parents) + len(k.owns) for k in KINDS)
    assert len(described.links) == declared
    by_child = {(link.child.name, link.column): link for link in described.links}
    membership_user = by_child[("clerk_organization_memberships", "user_id")]
    assert (membership_user.to_parent, membership_user.to_children) == (
        "user",
        "organizationMemberships",
    )
    assert by_child[("clerk_email_addresses", "user_id")].to_children == "emailAddresses"
    assert by_child[("clerk_organization_memberships", "organization_id")].to_parent == (
        "organization"
    )
    assert {v.name for v in described.views} >= {"clerk_users_live"}


def test_the_header_names_the_version_and_migration() -> None:
    described = replica()
    first = described.header("drizzle", "sqlite")[0]
    assert described.version in first and head_revision() in first
    assert described.header("sqlalchemy", None)[1].endswith("--format sqlalchemy")


def test_a_column_type_no_generator_knows_fails() -> None:
    table = Table("clerk_blobs", MetaData(), Column("id", Text), Column("data", LargeBinary))
    with pytest.raises(TypeError, match="LargeBinary"):
        table_spec(table)
    assert storage_of(Text()) is Storage.TEXT


def test_a_relation_name_taken_by_a_column_fails() -> None:
    parent = TableSpec("clerk_users", ())
    child = table_spec(
        Table(
            "clerk_notes",
            MetaData(),
            Column("id", Text),
            Column("user", Text),
            Column("user_id", Text),
        )
    )
    described = replica()
    clash = Replica(
        tables=(parent, child),
        views=(),
        links=(Link(child, "user_id", parent),),
        version=described.version,
        revision=described.revision,
    )
    with pytest.raises(ValueError, match="'user' is taken"):
        clash.check_names()
