"""A broken or hostile Backend API cannot make reconcile loop, read junk as data, fill memory,
or stop the run over one object the database refuses (the fake Clerk API over real HTTP)."""

from __future__ import annotations

import json

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import Response

from service.config import Settings
from service.reconcile.clerk_api import ClerkAPI
from tests.support import clerk_paging
from tests.support import tables as t
from tests.support.fake_clerk import FakeClerk
from tests.support.reconciling import by_kind, run
from tests.support.replica_helpers import rows


def serve_deep_metadata(fake: FakeClerk, user_id: str, depth: int) -> None:
    """Serve users as the fake does, that one with metadata `depth` levels deep (written out
    as text: the encoder of the fake itself would run out of stack)."""
    deep = '{"a":' * depth + "{}" + "}" * depth

    def answer(name: str, params: dict[str, str]) -> Response | None:
        if name != "users":
            return None
        page, _total = clerk_paging.page(fake.users, params, cursor=True)
        marked = [{**u, "public_metadata": "__deep__"} if u["id"] == user_id else u for u in page]
        return Response(
            json.dumps(marked).replace('"__deep__"', deep), media_type="application/json"
        )

    fake.on_list = answer


async def test_an_object_the_database_cannot_store_is_invalid_not_fatal(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    deep = fake.users[7]["id"]
    serve_deep_metadata(fake, deep, 1000)
    report = await run(engine, api, rsettings, kinds=("users",))
    users = by_kind(report)["users"]
    assert report.ok, report.summary()
    assert (users.status, users.invalid, users.created) == ("completed", 1, len(fake.users) - 1)
    stored = {u["id"] for u in await rows(engine, t.users)}
    assert deep not in stored and len(stored) == len(fake.users) - 1


async def test_a_list_that_ignores_its_offset_ends(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    first_page = fake.organizations[:5]

    def same_page(name: str, _params: dict[str, str]) -> Response | None:
        if name != "organizations":
            return None
        body = {"data": first_page, "total_count": 500}
        return Response(json.dumps(body), media_type="application/json")

    fake.on_list = same_page
    settings = rsettings.updated(reconcile_page_size=5)
    report = await run(engine, api, settings, kinds=("organizations",), force=True)
    assert report.ok, report.summary()
    lists = [r for r in fake.requests_to("organizations") if "offset" in r.params]
    assert len(lists) == 2  # the second page was the first again: the walk stopped there
    assert by_kind(report)["organizations"].listed == 5


async def test_a_list_that_pages_past_its_total_ends(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    counter = iter(range(10_000))

    def endless(name: str, params: dict[str, str]) -> Response | None:
        if name != "organizations" or "offset" not in params:
            return None
        made = [{**fake.organizations[0], "id": f"org_endless_{next(counter)}"} for _ in range(5)]
        return Response(
            json.dumps({"data": made, "total_count": 12}), media_type="application/json"
        )

    fake.on_list = endless
    settings = rsettings.updated(reconcile_page_size=5)
    report = await run(engine, api, settings, kinds=("organizations",), force=True)
    assert by_kind(report)["organizations"].listed <= 15  # stopped once past 12


async def test_a_redirect_is_not_data(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    def moved(name: str, _params: dict[str, str]) -> Response | None:
        if name != "organizations":
            return None
        return Response(
            '{"data": [], "total_count": 0}',
            status_code=302,
            headers={"location": "http://elsewhere.example/"},
            media_type="application/json",
        )

    fake.on_list = moved
    report = await run(engine, api, rsettings, kinds=("organizations",))
    organizations = by_kind(report)["organizations"]
    assert organizations.status == "failed" and "302" in (organizations.error or "")
    assert await rows(engine, t.organizations) == []


async def test_an_answer_over_the_size_cap_is_refused(
    engine: AsyncEngine, rsettings: Settings, fake: FakeClerk
) -> None:
    small = rsettings.updated(reconcile_max_response_bytes=4096)
    api = ClerkAPI(small, backoff_max_seconds=0.05)
    try:
        report = await run(engine, api, small, kinds=("users",))
    finally:
        await api.close()
    users = by_kind(report)["users"]
    assert users.status == "failed" and "larger than 4096 bytes" in (users.error or "")


async def test_an_object_too_deep_to_redact_is_invalid_not_fatal(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    # STORE_PRIVATE_METADATA=false walks every object to redact it: bounded, not the stack's.
    deep = fake.users[7]["id"]
    serve_deep_metadata(fake, deep, 600)
    settings = rsettings.updated(store_private_metadata=False)
    report = await run(engine, api, settings, kinds=("users",))
    users = by_kind(report)["users"]
    assert report.ok, report.summary()
    assert (users.status, users.invalid, users.created) == ("completed", 1, len(fake.users) - 1)


async def test_a_nul_from_the_api_is_stored_without_it(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    user = fake.users[3]
    user["first_name"] = "Ja\u0000ne"
    user["public_metadata"] = {"k\u0000": ["\u0000v"]}
    report = await run(engine, api, rsettings, kinds=("users",))
    assert report.ok, report.summary()
    assert by_kind(report)["users"].invalid == 0
    (row,) = [u for u in await rows(engine, t.users) if u["id"] == user["id"]]
    assert (row["first_name"], row["public_metadata"]) == ("Jane", {"k": ["v"]})
