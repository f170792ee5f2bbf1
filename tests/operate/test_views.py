"""The views every migration rebuilds: `<table>_live` on both databases, and on PostgreSQL the
tables of clerk_fdw, answering the queries of clerk_fdw's own README from the replica."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import insert, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.engine import create_engine
from service.kinds.registry import replica_tables
from service.operate.migrate import downgrade, upgrade
from service.operate.readonly import readonly_statements
from service.operate.views import live_views
from tests.support import tables as t
from tests.support.databases import fresh_pg_database
from tests.support.settings import make_settings

T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
T0_MS = 1_767_323_045_678

# clerk_fdw's README (tembo-io/clerk_fdw): each foreign table's columns, in order, with types.
FDW_TABLES = {
    "clerk_users": [
        ("user_id", "text"),
        ("first_name", "text"),
        ("last_name", "text"),
        ("email", "text"),
        ("gender", "text"),
        ("created_at", "bigint"),
        ("updated_at", "bigint"),
        ("last_sign_in_at", "bigint"),
        ("phone_numbers", "bigint"),
        ("username", "text"),
        ("attrs", "jsonb"),
    ],
    "clerk_organizations": [
        ("organization_id", "text"),
        ("name", "text"),
        ("slug", "text"),
        ("created_at", "bigint"),
        ("updated_at", "bigint"),
        ("created_by", "text"),
        ("attrs", "jsonb"),
    ],
    "clerk_organization_memberships": [
        ("user_id", "text"),
        ("organization_id", "text"),
        ("role", "text"),
    ],
}


async def _replica(engine: AsyncEngine) -> None:
    """Two users (one deleted), an organization, a live and an ended membership."""
    user: dict[str, Any] = {"created_at": T0, "updated_at": T0, "last_sign_in_at": T0}
    async with engine.begin() as conn:
        await conn.execute(
            insert(t.users).values(
                **user,
                id="user_a",
                first_name="Ada",
                username="ada",
                primary_email_address="ada@example.org",
                raw={"id": "user_a", "gender": "female"},
            )
        )
        await conn.execute(insert(t.users).values(**user, id="user_gone", deleted_at=T0))
        await conn.execute(
            insert(t.organizations),
            [{"id": "org_1", "name": "Acme", "slug": "acme", "created_by": "user_a", **user}],
        )
        member = {"organization_id": "org_1", "created_at": T0, "updated_at": T0}
        memberships = insert(t.organization_memberships)
        await conn.execute(
            memberships.values(**member, id="orgmem_1", user_id="user_a", role="org:admin")
        )
        await conn.execute(
            memberships.values(**member, id="orgmem_2", user_id="user_gone", deleted_at=T0)
        )


def test_every_table_with_a_tombstone_has_a_live_view() -> None:
    with_tombstone = {table.name for table in replica_tables() if "deleted_at" in table.c}
    assert {table.name for _, table in live_views()} == with_tombstone
    assert "clerk_users_live" in {name for name, _ in live_views()}


async def test_live_views_hold_the_live_rows_only(engine: AsyncEngine) -> None:
    await _replica(engine)
    async with engine.connect() as conn:
        users = (await conn.execute(text("SELECT id FROM clerk_users_live"))).scalars().all()
        members = await conn.execute(text("SELECT id FROM clerk_organization_memberships_live"))
        for name, _table in live_views():  # each exists and reads
            await conn.execute(text(f"SELECT count(*) FROM {name}"))
    assert users == ["user_a"]
    assert members.scalars().all() == ["orgmem_1"]


async def test_clerk_fdw_queries_run_unchanged(pg_engine: AsyncEngine) -> None:
    """`SET search_path = clerk_fdw, public`, then the README's queries of clerk_fdw."""
    await _replica(pg_engine)
    async with pg_engine.connect() as conn:
        await conn.execute(text("SET search_path = clerk_fdw, public"))
        users = (await conn.execute(text("select * from clerk_users"))).mappings().all()
        members = (
            await conn.execute(
                text("select * from clerk_organization_memberships where organization_id='org_1'")
            )
        ).all()
        orgs = (await conn.execute(text("select * from clerk_organizations"))).mappings().all()
        columns = await conn.execute(
            text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'clerk_fdw' ORDER BY table_name, ordinal_position"
            )
        )
        found: dict[str, list[tuple[str, str]]] = {}
        for table_name, column, data_type in columns:
            found.setdefault(table_name, []).append((column, data_type))
    assert found == FDW_TABLES
    assert [dict(u) for u in users] == [
        {
            "user_id": "user_a",
            "first_name": "Ada",
            "last_name": None,
            "email": "ada@example.org",
            "gender": "female",
            "created_at": T0_MS,
            "updated_at": T0_MS,
            "last_sign_in_at": T0_MS,
            "phone_numbers": None,  # clerk_fdw reads the list as an integer: always NULL
            "username": "ada",
            "attrs": {"id": "user_a", "gender": "female"},
        }
    ]
    assert members == [("user_a", "org_1", "org:admin")]
    assert [(o["organization_id"], o["slug"], o["created_at"]) for o in orgs] == [
        ("org_1", "acme", T0_MS)
    ]


def _views(url: str) -> set[tuple[str, str]]:
    async def run() -> set[tuple[str, str]]:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(
                "SELECT table_schema, table_name FROM information_schema.views "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            )
        finally:
            await conn.close()
        return {(r["table_schema"], r["table_name"]) for r in rows}

    return asyncio.run(run())


def _sql(url: str, *statements: str) -> list[Any]:
    async def run() -> list[Any]:
        conn = await asyncpg.connect(url)
        try:
            return [await conn.fetch(statement) for statement in statements]
        finally:
            await conn.close()

    return asyncio.run(run())


def test_views_are_rebuilt_at_head_keep_their_grants_and_follow_clerk_fdw_schema(
    pg_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.config import get_settings

    role = "clerk_views_reader_test"
    with fresh_pg_database(pg_admin_url, "clerk_replica_views_test") as url:
        upgrade(url)
        at_head = _views(url)
        _sql(url, *readonly_statements(role, fdw_schema="clerk_fdw"))
        upgrade(url)  # rebuilt: the reader keeps what readonly-sql gave it
        _sql(
            url,
            f"SET ROLE {role}",
            "SELECT id FROM clerk_users_live",
            "SELECT user_id FROM clerk_fdw.clerk_users",
            "RESET ROLE",
        )
        assert ("clerk_fdw", "clerk_users") in at_head
        assert ("public", "clerk_users_live") in at_head
        downgrade(url, "-1")  # not at head: no views (they may read what changed)
        assert _views(url) == set()
        upgrade(url)
        assert _views(url) == at_head  # and back, the same
        monkeypatch.setenv("CLERK_FDW_SCHEMA", "")
        get_settings.cache_clear()
        try:
            upgrade(url)  # nothing to migrate: the views are rebuilt all the same
            assert _views(url) == {v for v in at_head if v[0] == "public"}
        finally:
            get_settings.cache_clear()
    _sql(pg_admin_url, f"DROP ROLE IF EXISTS {role}")


def test_sqlite_has_live_views_and_no_fdw_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/v.db"
    upgrade(url)

    async def names() -> list[str]:
        engine = create_engine(make_settings(url, "redis://unused"))
        try:
            async with engine.connect() as conn:
                result = await conn.execute(
                    text("SELECT name FROM sqlite_master WHERE type = 'view' ORDER BY name")
                )
                return list(result.scalars())
        finally:
            await engine.dispose()

    assert asyncio.run(names()) == sorted(name for name, _ in live_views())


def test_a_role_that_may_not_create_schemas_still_migrates(pg_admin_url: str) -> None:
    """A role with CREATE on `public` only (not on the database): the tables and the live views
    are made, the clerk_fdw views are skipped with a warning, and the migration succeeds."""
    role = "clerk_views_owner_test"
    with fresh_pg_database(pg_admin_url, "clerk_replica_lowpriv_test") as url:
        _sql(pg_admin_url, f"DROP ROLE IF EXISTS {role}", f"CREATE ROLE {role} LOGIN PASSWORD 'pw'")
        _sql(url, f"GRANT USAGE, CREATE ON SCHEMA public TO {role}")
        as_role = make_url(url).set(username=role, password="pw")
        upgrade(as_role.render_as_string(hide_password=False))
        made = _views(url)
        assert ("public", "clerk_users_live") in made
        assert {schema for schema, _ in made} == {"public"}
    _sql(pg_admin_url, f"DROP ROLE IF EXISTS {role}")


def _grants(url: str, schemas: tuple[str, ...]) -> set[tuple[str, str, str, str]]:
    """(grantee, schema, view, privilege) of the views in `schemas`, PUBLIC included."""
    (rows,) = _sql(
        url,
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, "
        "n.nspname, c.relname, a.privilege_type FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN LATERAL aclexplode(c.relacl) a "
        f"WHERE c.relkind = 'v' AND a.grantee <> c.relowner AND n.nspname IN {schemas!r}",
    )
    return {(r[0], r[1], r[2], r[3]) for r in rows}


def test_an_install_rebuilds_only_its_own_views_and_gives_every_grant_back(
    pg_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two installs in one database (REPLICA_SCHEMA public and clerk2, each with its own
    CLERK_FDW_SCHEMA): migrating one leaves the other's views and grants alone; grants to
    PUBLIC and to a role whose name needs quoting survive every migration."""
    from service.config import get_settings

    role = "Clerk Reader-test"
    first = ("public", "clerk_fdw")
    second = ("clerk2", "clerk2_fdw")

    def migrate(url: str, schemas: tuple[str, str]) -> None:
        monkeypatch.setenv("REPLICA_SCHEMA", schemas[0])
        monkeypatch.setenv("CLERK_FDW_SCHEMA", schemas[1])
        get_settings.cache_clear()
        try:
            upgrade(url)
        finally:
            get_settings.cache_clear()

    _sql(pg_admin_url, f'DROP ROLE IF EXISTS "{role}"', f'CREATE ROLE "{role}"')
    try:
        with fresh_pg_database(pg_admin_url, "clerk_replica_two_installs_test") as url:
            migrate(url, first)
            _sql(
                url,
                "GRANT SELECT ON clerk_users_live TO PUBLIC",
                f'GRANT SELECT ON clerk_fdw.clerk_users TO "{role}" WITH GRANT OPTION',
                f'GRANT SELECT, REFERENCES ON clerk_organizations_live TO "{role}"',
            )
            views = _views(url)
            granted = _grants(url, first)
            assert ("PUBLIC", "public", "clerk_users_live", "SELECT") in granted
            assert (role, "clerk_fdw", "clerk_users", "SELECT") in granted
            migrate(url, second)
            assert views < _views(url)  # the first install's are all still there
            assert _grants(url, first) == granted
            second_views = _views(url) - views
            assert {schema for schema, _ in second_views} == set(second)
            migrate(url, first)  # and back: the first rebuilds its own, with its grants
            assert _views(url) == views | second_views
            assert _grants(url, first) == granted
    finally:
        _sql(pg_admin_url, f'DROP ROLE IF EXISTS "{role}"')


def test_a_view_granted_to_public_migrates_again(pg_admin_url: str) -> None:
    with fresh_pg_database(pg_admin_url, "clerk_replica_public_grant_test") as url:
        upgrade(url)
        _sql(url, "GRANT SELECT ON clerk_users_live, clerk_fdw.clerk_users TO PUBLIC")
        granted = _grants(url, ("public", "clerk_fdw"))
        upgrade(url)
        upgrade(url)
        assert _grants(url, ("public", "clerk_fdw")) == granted
        assert ("PUBLIC", "clerk_fdw", "clerk_users", "SELECT") in granted
