"""Deletion detection against the fake Clerk API, on PostgreSQL and SQLite: only after a complete
listing, each candidate confirmed by a lookup, never beyond the safety share unless forced."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import JSONResponse

from service.config import Settings
from service.kinds.declaration import Kind
from service.kinds.organizations import build as build_org
from service.kinds.registry import kind
from service.reconcile.checkpoints import runs, seen
from service.reconcile.clerk_api import ClerkAPI
from service.reconcile.deletions import can_look_up, look_up
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.fake_clerk import FakeClerk, error
from tests.support.reconciling import by_kind, live, run
from tests.support.replica_helpers import deliver, one


async def test_a_failing_pass_deletes_nothing(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    # A safety limit far above what goes missing: only the rule named here can hold the rows.
    roomy = rsettings.updated(reconcile_delete_floor=1000)
    await run(engine, api, roomy)
    pages = -(-len(fake.users) // roomy.reconcile.page_size)
    assert pages == 3
    fake.delete("users", "user_00001")
    cursors: list[str] = []

    def users_fail_on_the_last_page(name: str, params: dict[str, str]) -> Any:
        cursor = params.get("starting_after")
        if name != "users" or cursor is None:
            return None
        if cursor not in cursors:
            cursors.append(cursor)
        if cursors.index(cursor) == pages - 2:  # all but the last page were listed
            return error(503, "internal_clerk_error", "Something went wrong")
        return None

    fake.on_list = users_fail_on_the_last_page
    report = await run(engine, api, roomy, full=True)  # the full listing, which ends what it lacks
    users = by_kind(report)["users"]
    assert not report.ok and users.status == "failed"
    assert "after 4 attempts" in (users.error or "")
    assert users.tombstoned == 0
    assert len(await live(engine, t.users)) == 120  # user_00001 and the unlisted page's too
    assert by_kind(report)["memberships"].status == "completed"  # the others still ran
    async with engine.connect() as conn:
        assert (
            await conn.execute(select(runs.c.status).order_by(runs.c.id.desc()))
        ).scalar() == "failed"


@pytest.mark.parametrize(
    ("share", "floor", "missing", "refused"),
    [
        (0.25, 10, 30, False),  # 120 live: the share allows 30...
        (0.25, 10, 31, True),  # ...and not one more
        (0.05, 20, 20, False),  # the share allows 6: the floor, 20, wins...
        (0.05, 20, 21, True),  # ...and not one more
    ],
)
async def test_the_safety_limit_is_the_configured_share_or_the_floor(
    engine: AsyncEngine,
    api: ClerkAPI,
    rsettings: Settings,
    fake: FakeClerk,
    share: float,
    floor: int,
    missing: int,
    refused: bool,
) -> None:
    limited = rsettings.updated(reconcile_max_delete_share=share, reconcile_delete_floor=floor)
    await run(engine, api, limited, kinds=("users",))
    assert len(fake.users) == 120
    fake.users = fake.users[missing:]
    report = await run(engine, api, limited, kinds=("users",))
    users = by_kind(report)["users"]
    if refused:
        assert users.status == "refused" and users.tombstoned == 0
        assert f"{missing} of 120" in (users.error or "")
        assert len(await live(engine, t.users)) == 120
    else:
        assert report.ok and users.tombstoned == missing
        assert len(await live(engine, t.users)) == 120 - missing


async def test_safety_limit_refuses_mass_deletion_unless_forced(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    await run(engine, api, rsettings)
    fake.users = fake.users[:60]  # half the users vanish: an API bug, a wrong key...
    report = await run(engine, api, rsettings)
    users = by_kind(report)["users"]
    assert not report.ok and users.status == "refused" and "60 of 120" in (users.error or "")
    assert len(await live(engine, t.users)) == 120
    forced = await run(engine, api, rsettings, force=True, restart=True)
    assert forced.ok and by_kind(forced)["users"].tombstoned == 60
    assert len(await live(engine, t.users)) == 60


async def test_candidates_are_confirmed_before_tombstoning(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    both = ("organizations", "memberships")
    await run(engine, api, rsettings, kinds=both)

    # The first membership is deleted while the walk is on page 2: offsets shift by one and
    # the membership that was 51st is never listed. Its lookup must save it.
    def delete_during_walk(name: str, params: dict[str, str]) -> None:
        if name == "memberships" and params.get("offset") == "50":
            fake.delete("memberships", "orgmem_0000_000")

    fake.on_list = delete_during_walk
    report = await run(engine, api, rsettings, kinds=both, full=True)
    assert report.ok and by_kind(report)["memberships"].tombstoned == 0
    assert len(await live(engine, t.organization_memberships)) == 60
    lookups = fake.requests_to("organizations/org_0010/memberships")
    assert [r.params.get("user_id") for r in lookups] == ["user_00050"]

    # Without the lookup the skipped membership would have been tombstoned.
    fake.on_list = None
    fake.memberships.append(cp.membership("orgmem_fresh", org_id="org_0011", user_id="user_00001"))
    unconfirmed = await run(engine, api, rsettings, kinds=both, confirm_deletions=False, full=True)
    assert by_kind(unconfirmed)["memberships"].tombstoned == 1  # the really deleted one
    assert (await one(engine, t.organization_memberships, "orgmem_0000_000"))[
        "deleted_at"
    ] is not None


async def test_a_refused_pass_lists_again_next_time(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    await run(engine, api, rsettings, kinds=("users",))
    kept = fake.users[:60]
    fake.users = kept
    refused = await run(engine, api, rsettings, kinds=("users",))
    assert by_kind(refused)["users"].status == "refused"
    async with engine.connect() as conn:
        assert (await conn.execute(select(seen))).all() == []  # no stale listing kept
    fake.users = kept + [
        cp.user(f"user_{i:05d}", created_at=cp.T0 + i, updated_at=cp.T0 + i) for i in range(60, 120)
    ]
    before = len(fake.requests_to("users"))
    again = await run(engine, api, rsettings, kinds=("users",))  # resumes the failed run
    assert again.resumed and again.ok
    assert len(fake.requests_to("users")) - before == 3  # it listed again
    assert by_kind(again)["users"].tombstoned == 0
    assert len(await live(engine, t.users)) == 120


async def test_a_deleted_domain_is_confirmed_through_its_organization(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    both = ("organizations", "domains")
    await run(engine, api, rsettings, kinds=both)
    fake.delete("domains", "orgdmn_0003")
    report = await run(engine, api, rsettings, kinds=both)
    assert report.ok and by_kind(report)["domains"].tombstoned == 1
    assert [r.params.get("limit") for r in fake.requests_to("organizations/org_0003/domains")] == [
        "500"
    ]
    assert (await one(engine, t.organization_domains, "orgdmn_0003"))["deleted_at"] is not None


async def test_a_user_gone_from_clerk_is_erased_with_its_memberships(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    await run(engine, api, rsettings)
    member = next(m for m in fake.memberships if m["public_user_data"]["user_id"])
    user_id = member["public_user_data"]["user_id"]
    assert (await one(engine, t.users, user_id))["primary_email_address"] is not None
    fake.delete("users", user_id)
    fake.delete("memberships", member["id"])
    report = await run(engine, api, rsettings)
    assert report.ok and by_kind(report)["users"].tombstoned == 1
    user = await one(engine, t.users, user_id)
    assert user["deleted_at"] is not None
    assert (user["primary_email_address"], user["first_name"], user["raw"]) == (None,) * 3
    gone = await one(engine, t.organization_memberships, member["id"])
    assert gone["deleted_at"] is not None and gone["raw"] is None


async def test_a_row_that_cannot_be_looked_up_is_kept_not_guessed_gone(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    await run(engine, api, rsettings)
    # A membership stored from a webhook that named no member (public_user_data is optional),
    # and not listed: its lookup needs the user, so Clerk cannot be asked.
    bare = cp.membership("orgmem_unnamed", org_id="org_0000", created_at=cp.T0 - 1)
    del bare["public_user_data"]
    await deliver(engine, cp.envelope("organizationMembership.created", bare))
    report = await run(engine, api, rsettings)
    memberships = by_kind(report)["memberships"]
    assert report.ok and memberships.unconfirmed == 1 and memberships.tombstoned == 0
    assert (await one(engine, t.organization_memberships, "orgmem_unnamed"))["deleted_at"] is None


ORG = "org_29w9IfBrPmcpi0IeBVaKtA7R94W"
U = "user_29w83sxmDNGwOuEthce5gg56FcC"
MEMBERSHIP = "orgmem_29w8XjGrpzt3jJqPnh2gmXS0c1N"


def membership_row(id: str = MEMBERSHIP, **columns: Any) -> dict[str, Any]:
    return {"id": id, "organization_id": ORG, "user_id": U, **columns}


class TestLookUp:
    """Reading one object back, as its kind's `Lookup` says (against a fake of its own)."""

    @pytest.fixture
    def fake(self) -> FakeClerk:
        return FakeClerk(
            users=[cp.user()],
            organizations=[cp.organization()],
            memberships=[cp.membership(), cp.membership("orgmem_other", user_id="user_other")],
            invitations=[cp.invitation()],
            domains=[cp.domain(), cp.domain("orgdmn_other", org_id="org_other")],
        )

    @pytest.fixture
    async def api(self, quick_api: ClerkAPI) -> ClerkAPI:
        return quick_api  # no database needed: SQLite settings, few retries

    async def test_a_direct_path_finds_the_object(self, api: ClerkAPI, fake: FakeClerk) -> None:
        found = await look_up(api, kind("users"), {"id": U})
        assert found is not None and found["id"] == U
        row = {"id": "orginv_29w9IfBrPmcpi0IeBVaKtA7R94W", "organization_id": ORG}
        invitation = await look_up(api, kind("invitations"), row)
        assert invitation is not None and invitation["status"] == "pending"
        assert [r.status for r in fake.log] == [200, 200]

    async def test_a_404_means_gone(self, api: ClerkAPI, fake: FakeClerk) -> None:
        assert await look_up(api, kind("users"), {"id": "user_gone"}) is None
        assert await look_up(api, kind("organizations"), {"id": "org_gone"}) is None
        assert [r.status for r in fake.log] == [404, 404]

    async def test_an_in_list_lookup_picks_the_row_by_id(
        self, api: ClerkAPI, fake: FakeClerk
    ) -> None:
        found = await look_up(api, kind("memberships"), membership_row())
        assert found is not None and found["id"] == MEMBERSHIP
        (request,) = fake.requests_to(f"organizations/{ORG}/memberships")
        assert request.params == {"user_id": U, "limit": "10"}
        # The pair now has another membership: the stored one is gone.
        assert await look_up(api, kind("memberships"), membership_row("orgmem_old")) is None
        domain = await look_up(
            api,
            kind("domains"),
            {"id": "orgdmn_29w9IfBrPmcpi0IeBVaKtA7R94W", "organization_id": ORG},
        )
        assert domain is not None and domain["name"] == "acme.example"
        elsewhere = {"id": "orgdmn_other", "organization_id": ORG}  # listed under another org
        assert await look_up(api, kind("domains"), elsewhere) is None

    async def test_an_in_list_lookup_of_a_gone_owner_is_gone(
        self, api: ClerkAPI, fake: FakeClerk
    ) -> None:
        row = membership_row(organization_id="org_gone")
        assert await look_up(api, kind("memberships"), row) is None
        assert [r.status for r in fake.requests_to("organizations/org_gone/memberships")] == [404]

    async def test_a_row_missing_a_needed_column_cannot_be_looked_up(
        self, api: ClerkAPI, fake: FakeClerk
    ) -> None:
        # Reconcile keeps such rows rather than take the silence for a deletion (test_deletions).
        assert not can_look_up(kind("memberships"), membership_row(user_id=None))
        assert can_look_up(kind("memberships"), membership_row())
        assert not can_look_up(kind("domains"), {"id": "orgdmn_1", "organization_id": None})
        assert await look_up(api, kind("memberships"), membership_row(user_id=None)) is None
        assert fake.log == []

    async def test_another_object_in_the_answer_is_no_proof_of_life(
        self, api: ClerkAPI, fake: FakeClerk
    ) -> None:
        fake.on_get = lambda name, wanted: JSONResponse(cp.user("user_someone_else"))
        assert await look_up(api, kind("users"), {"id": U}) is None
        fake.on_get = lambda name, wanted: JSONResponse({"object": "user"})  # no id at all
        assert await look_up(api, kind("users"), {"id": U}) is None
        fake.on_get = None
        assert await look_up(api, kind("users"), {"id": U}) is not None

    async def test_a_kind_without_a_lookup_is_never_found(
        self, api: ClerkAPI, fake: FakeClerk
    ) -> None:
        bare = Kind("plain", 0, t.organizations, build_org, ("plain.created",))
        assert await look_up(api, bare, {"id": ORG}) is None
        assert fake.log == []
