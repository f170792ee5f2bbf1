"""Reading one object back from the fake Clerk API over real HTTP, as its kind's Lookup says."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import JSONResponse

from service.kinds.declaration import Kind
from service.kinds.organizations import build as build_org
from service.kinds.registry import kind
from service.reconcile.clerk_api import ClerkAPI
from service.reconcile.lookups import can_look_up, look_up
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.fake_clerk import FakeClerk

ORG = "org_29w9IfBrPmcpi0IeBVaKtA7R94W"
U = "user_29w83sxmDNGwOuEthce5gg56FcC"
MEMBERSHIP = "orgmem_29w8XjGrpzt3jJqPnh2gmXS0c1N"


@pytest.fixture
def fake() -> FakeClerk:
    return FakeClerk(
        users=[cp.user()],
        organizations=[cp.organization()],
        memberships=[cp.membership(), cp.membership("orgmem_other", user_id="user_other")],
        invitations=[cp.invitation()],
        domains=[cp.domain(), cp.domain("orgdmn_other", org_id="org_other")],
    )


@pytest.fixture
async def api(quick_api: ClerkAPI) -> ClerkAPI:
    return quick_api  # no database needed: SQLite settings, few retries


def membership_row(id: str = MEMBERSHIP, **columns: Any) -> dict[str, Any]:
    return {"id": id, "organization_id": ORG, "user_id": U, **columns}


async def test_a_direct_path_finds_the_object(api: ClerkAPI, fake: FakeClerk) -> None:
    found = await look_up(api, kind("users"), {"id": U})
    assert found is not None and found["id"] == U
    row = {"id": "orginv_29w9IfBrPmcpi0IeBVaKtA7R94W", "organization_id": ORG}
    invitation = await look_up(api, kind("invitations"), row)
    assert invitation is not None and invitation["status"] == "pending"
    assert [r.status for r in fake.log] == [200, 200]


async def test_a_404_means_gone(api: ClerkAPI, fake: FakeClerk) -> None:
    assert await look_up(api, kind("users"), {"id": "user_gone"}) is None
    assert await look_up(api, kind("organizations"), {"id": "org_gone"}) is None
    assert [r.status for r in fake.log] == [404, 404]


async def test_an_in_list_lookup_picks_the_row_by_id(api: ClerkAPI, fake: FakeClerk) -> None:
    found = await look_up(api, kind("memberships"), membership_row())
    assert found is not None and found["id"] == MEMBERSHIP
    (request,) = fake.requests_to(f"organizations/{ORG}/memberships")
    assert request.params == {"user_id": U, "limit": "10"}
    # The pair now has another membership: the stored one is gone.
    assert await look_up(api, kind("memberships"), membership_row("orgmem_old")) is None
    domain = await look_up(
        api, kind("domains"), {"id": "orgdmn_29w9IfBrPmcpi0IeBVaKtA7R94W", "organization_id": ORG}
    )
    assert domain is not None and domain["name"] == "acme.example"
    elsewhere = {"id": "orgdmn_other", "organization_id": ORG}  # listed under another org
    assert await look_up(api, kind("domains"), elsewhere) is None


async def test_an_in_list_lookup_of_a_gone_owner_is_gone(api: ClerkAPI, fake: FakeClerk) -> None:
    row = membership_row(organization_id="org_gone")
    assert await look_up(api, kind("memberships"), row) is None
    assert [r.status for r in fake.requests_to("organizations/org_gone/memberships")] == [404]


async def test_a_row_missing_a_needed_column_cannot_be_looked_up(
    api: ClerkAPI, fake: FakeClerk
) -> None:
    # Reconcile keeps such rows rather than take the silence for a deletion (test_deletions).
    assert not can_look_up(kind("memberships"), membership_row(user_id=None))
    assert can_look_up(kind("memberships"), membership_row())
    assert not can_look_up(kind("domains"), {"id": "orgdmn_1", "organization_id": None})
    assert await look_up(api, kind("memberships"), membership_row(user_id=None)) is None
    assert fake.log == []


async def test_another_object_in_the_answer_is_no_proof_of_life(
    api: ClerkAPI, fake: FakeClerk
) -> None:
    fake.on_get = lambda name, wanted: JSONResponse(cp.user("user_someone_else"))
    assert await look_up(api, kind("users"), {"id": U}) is None
    fake.on_get = lambda name, wanted: JSONResponse({"object": "user"})  # no id at all
    assert await look_up(api, kind("users"), {"id": U}) is None
    fake.on_get = None
    assert await look_up(api, kind("users"), {"id": U}) is not None


async def test_a_kind_without_a_lookup_is_never_found(api: ClerkAPI, fake: FakeClerk) -> None:
    bare = Kind("plain", 0, t.organizations, build_org, ("plain.created",))
    assert await look_up(api, bare, {"id": ORG}) is None
    assert fake.log == []
