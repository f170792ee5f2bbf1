"""Erasure on PostgreSQL and SQLite: a deleted user's personal data goes from every kind and
from the inbox, stays gone whatever arrives later, and only that user's."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_one
from service.clerk.rows import RowOptions
from service.inbox.store import Status, inbox
from service.kinds import erasure, registry
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import deliver, inbox_row, one, rows, store_event

U = "user_29w83sxmDNGwOuEthce5gg56FcC"
OTHER = "user_2other0000000000000000000"
KEEP = RowOptions(erase_deleted_users=False)
PERSONAL_USER_COLUMNS = (
    "username",
    "first_name",
    "last_name",
    "primary_email_address",
    "primary_phone_number",
    "image_url",
    "public_metadata",
    "private_metadata",
    "unsafe_metadata",
    "raw",
)


def person(user_id: str = U, **fields: Any) -> dict[str, Any]:
    return cp.user(
        user_id,
        emails=[cp.email(f"idn_e_{user_id}", f"{user_id}@example.org")],
        phone_numbers=[cp.phone(f"idn_p_{user_id}", "+15555550142")],
        primary_phone_number_id=f"idn_p_{user_id}",
        external_accounts=[cp.external_account(f"eac_{user_id}", username="gh-name")],
        username=f"name-{user_id}",
        external_id=f"ext-{user_id}",
        public_metadata={"nickname": "Jay"},
        **fields,
    )


def accepted_invitation(id: str, user_id: str) -> dict[str, Any]:
    inviter = {**cp.invitation()["public_inviter_data"], "user_id": "user_2inviter"}
    return cp.invitation(
        id,
        status="accepted",
        user_id=user_id,
        email_address=f"{user_id}@example.org",
        inviter_id="user_2inviter",
        public_inviter_data=inviter,
    )


async def test_deleting_a_user_erases_it_everywhere_and_only_it(engine: AsyncEngine) -> None:
    events = {}
    for user_id, suffix in ((U, "mine"), (OTHER, "other")):
        events[f"user_{suffix}"] = await store_event(
            engine, cp.envelope("user.created", person(user_id))
        )
        events[f"member_{suffix}"] = await store_event(
            engine,
            cp.envelope(
                "organizationMembership.created", cp.membership(f"orgmem_{suffix}", user_id=user_id)
            ),
        )
        events[f"invite_{suffix}"] = await store_event(
            engine,
            cp.envelope(
                "organizationInvitation.accepted", accepted_invitation(f"orginv_{suffix}", user_id)
            ),
        )
    # An event that failed keeps its body for replay, but not past its person's deletion.
    events["failed"] = await store_event(
        engine, cp.envelope("user.updated", {**person(U), "created_at": "not a time"})
    )
    for svix_id in events.values():
        await apply_one(engine, svix_id, RowOptions())
    assert (await inbox_row(engine, events["failed"]))["status"] == Status.FAILED

    await deliver(engine, cp.envelope("user.deleted", cp.deleted("user", U), cp.T0 + 100))

    user = await one(engine, t.users, U)
    assert {c: user[c] for c in PERSONAL_USER_COLUMNS} == dict.fromkeys(PERSONAL_USER_COLUMNS)
    # The tombstone: who it was to Clerk and the app, and when, nothing that names the person.
    assert user["external_id"] == f"ext-{U}" and user["deleted_at"] is not None
    assert user["created_at"] is not None and user["updated_at"] is not None
    for table in (t.email_addresses, t.phone_numbers, t.external_accounts):
        assert await rows(engine, table, user_id=U) == []
    member = await one(engine, t.organization_memberships, "orgmem_mine")
    assert (member["raw"], member["public_metadata"], member["private_metadata"]) == (None,) * 3
    assert (member["user_id"], member["role"]) == (U, "org:member")
    invite = await one(engine, t.organization_invitations, "orginv_mine")
    assert (invite["email_address"], invite["raw"]) == (None, None)
    assert (invite["status"], invite["user_id"]) == ("accepted", U)
    for name in ("user_mine", "member_mine", "invite_mine", "failed"):
        assert (await inbox_row(engine, events[name]))["body"] is None, name

    # The other user keeps everything.
    other = await one(engine, t.users, OTHER)
    assert other["username"] == f"name-{OTHER}" and other["raw"] is not None
    assert len(await rows(engine, t.email_addresses, user_id=OTHER)) == 1
    assert (await one(engine, t.organization_memberships, "orgmem_other"))["raw"] is not None
    invite = await one(engine, t.organization_invitations, "orginv_other")
    assert invite["email_address"] == f"{OTHER}@example.org"
    for name in ("user_other", "member_other", "invite_other"):
        assert (await inbox_row(engine, events[name]))["body"] is not None, name


async def test_a_late_snapshot_brings_nothing_back(engine: AsyncEngine) -> None:
    await deliver(engine, cp.envelope("user.created", person()))
    await deliver(engine, cp.envelope("user.deleted", cp.deleted("user", U), cp.T0 + 10_000))
    # Taken before the deletion: the ordering rules let it update the tombstone...
    late = await store_event(
        engine, cp.envelope("user.updated", person(updated_at=cp.T0 + 5_000, first_name="Late"))
    )
    late_member = await store_event(
        engine, cp.envelope("organizationMembership.created", cp.membership("orgmem_late"))
    )
    assert await apply_one(engine, late, RowOptions()) is Status.APPLIED
    assert await apply_one(engine, late_member, RowOptions()) is Status.APPLIED
    # ...but what names the person is erased again, in the same transaction.
    user = await one(engine, t.users, U)
    assert user["first_name"] is None and user["raw"] is None
    assert user["updated_at"] is not None and user["deleted_at"] is not None
    assert await rows(engine, t.email_addresses, user_id=U) == []
    member = await one(engine, t.organization_memberships, "orgmem_late")
    assert member["deleted_at"] is not None and member["raw"] is None
    for svix_id in (late, late_member):
        assert (await inbox_row(engine, svix_id))["body"] is None


async def test_an_older_snapshot_refused_by_the_tombstone_keeps_no_body(
    engine: AsyncEngine,
) -> None:
    await deliver(engine, cp.envelope("user.created", person(updated_at=cp.T0 + 50)))
    await deliver(engine, cp.envelope("user.deleted", cp.deleted("user", U), cp.T0 + 100))
    stale = await store_event(engine, cp.envelope("user.updated", person(updated_at=cp.T0)))
    assert await apply_one(engine, stale, RowOptions()) is Status.APPLIED
    assert (await inbox_row(engine, stale))["body"] is None


async def test_pending_events_keep_their_body_until_they_apply(engine: AsyncEngine) -> None:
    await deliver(engine, cp.envelope("user.created", person()))
    pending = await store_event(
        engine, cp.envelope("user.updated", person(updated_at=cp.T0 + 1, first_name="Pending"))
    )
    await deliver(engine, cp.envelope("user.deleted", cp.deleted("user", U), cp.T0 + 100))
    row = await inbox_row(engine, pending)
    assert row["status"] == Status.PENDING and row["body"] is not None
    assert await apply_one(engine, pending, RowOptions()) is Status.APPLIED
    assert (await inbox_row(engine, pending))["body"] is None
    assert (await one(engine, t.users, U))["first_name"] is None


async def test_with_erasure_off_the_tombstone_keeps_the_last_state(engine: AsyncEngine) -> None:
    created = await store_event(engine, cp.envelope("user.created", person()))
    await apply_one(engine, created, KEEP)
    await deliver(engine, cp.envelope("user.deleted", cp.deleted("user", U), cp.T0 + 100), KEEP)
    user = await one(engine, t.users, U)
    assert user["username"] == f"name-{U}" and user["deleted_at"] is not None
    assert (await inbox_row(engine, created))["body"] is not None


async def test_erase_remaining_erases_tombstones_kept_before(engine: AsyncEngine) -> None:
    for user_id in (U, OTHER):
        await deliver(engine, cp.envelope("user.created", person(user_id)), KEEP)
    await deliver(engine, cp.envelope("organizationMembership.created", cp.membership()), KEEP)
    await deliver(engine, cp.envelope("user.deleted", cp.deleted("user", U), cp.T0 + 100), KEEP)
    async with engine.begin() as conn:
        assert await erasure.erase_remaining(conn, 10) == 1
    async with engine.begin() as conn:
        assert await erasure.erase_remaining(conn, 10) == 0
    assert (await one(engine, t.users, U))["username"] is None
    assert (await one(engine, t.organization_memberships, cp.membership()["id"]))["raw"] is None
    assert (await one(engine, t.users, OTHER))["username"] == f"name-{OTHER}"  # alive


async def test_a_deletion_of_an_unknown_user_erases_what_names_it(engine: AsyncEngine) -> None:
    # The user's own events were lost; a membership naming the user was not.
    await deliver(engine, cp.envelope("organizationMembership.created", cp.membership()))
    await deliver(engine, cp.envelope("user.deleted", cp.deleted("user", U), cp.T0 + 100))
    assert (await one(engine, t.organization_memberships, cp.membership()["id"]))["raw"] is None
    assert (await one(engine, t.users, U))["deleted_at"] is not None


# Every person a payload names, by the kind that carries them (docs/explanation/personal-data.md
# lists them, each with this test's case).
V = "user_2victim000000000000000000"
V_SAYS = ("Zebulon", "Quuxworth", "zebulon.q@example.org", "https://img.example/zebulon")


def _as_victim(value: Any) -> Any:
    """The payload with every person it names who is V showing V's names, email and image."""
    if isinstance(value, list):
        return [_as_victim(v) for v in value]
    if not isinstance(value, dict):
        return value
    found = {k: _as_victim(v) for k, v in value.items()}
    if found.get("user_id") == V or found.get("id") == V:
        for key, said in zip(("first_name", "last_name"), V_SAYS, strict=False):
            if key in found:
                found[key] = said
        for key in ("email", "identifier", "email_address"):
            if key in found:
                found[key] = V_SAYS[2]
        for key in ("image_url", "profile_image_url"):
            if key in found:
                found[key] = V_SAYS[3]
    return found


def _victim() -> dict[str, Any]:
    victim: dict[str, Any] = _as_victim(
        cp.user(V, emails=[cp.email("idn_e_v", V_SAYS[2])], username="zebulon-q", last_name="x")
    )
    return victim


def _session_of_victim() -> dict[str, Any]:
    return {**cp.session("sess_v", user_id=V), "user": _victim()}


NAMING_V: dict[str, tuple[str, dict[str, Any]]] = {
    "invitation inviter (public_inviter_data)": (
        "organizationInvitation.created",
        cp.invitation(
            "orginv_by_v",
            inviter_id=V,
            public_inviter_data={**cp.invitation()["public_inviter_data"], "user_id": V},
        ),
    ),
    "invitation invitee (accepted)": (
        "organizationInvitation.accepted",
        accepted_invitation("orginv_of_v", V),
    ),
    "membership (public_user_data)": (
        "organizationMembership.created",
        cp.membership("orgmem_v", user_id=V),
    ),
    "session (user, latest_activity)": ("session.created", _session_of_victim()),
    "subscription payer": (
        "subscription.created",
        cp.subscription("csub_v", user_id=V, organization_id=""),
    ),
    "subscription item payer": (
        "subscriptionItem.active",
        cp.subscription_item("csub_item_v", user_id=V, organization_id=""),
    ),
    "payment attempt payer": (
        "paymentAttempt.updated",
        {**cp.payment_attempt("pa_v", user_id=V), "subscription_items": []},
    ),
}


async def _dump(engine: AsyncEngine) -> str:
    """Every replica row and inbox body as text (what `pg_dump` would show of them)."""
    found: list[str] = []
    async with engine.connect() as conn:
        for table in (*registry.replica_tables(), inbox):
            for row in await conn.execute(select(table)):
                found.extend(json.dumps(v, default=str) for v in row)
    return "\n".join(found)


@pytest.mark.parametrize("case", sorted(NAMING_V))
async def test_every_person_a_payload_names_is_erased_with_them(
    engine: AsyncEngine, case: str
) -> None:
    event_type, data = NAMING_V[case]
    await deliver(engine, cp.envelope("user.created", _victim()))
    event = await store_event(engine, cp.envelope(event_type, _as_victim(data)))
    assert await apply_one(engine, event, RowOptions()) is Status.APPLIED
    before = await _dump(engine)
    assert V_SAYS[0] in before and V_SAYS[2] in before  # held until the deletion
    await deliver(engine, cp.envelope("user.deleted", cp.deleted("user", V), cp.T0 + 100))
    after = await _dump(engine)
    assert [said for said in V_SAYS if said in after] == []
    assert (await inbox_row(engine, event))["body"] is None


async def test_an_inviter_s_erasure_keeps_the_invitee_s_invitation(engine: AsyncEngine) -> None:
    event_type, data = NAMING_V["invitation inviter (public_inviter_data)"]
    await deliver(engine, cp.envelope(event_type, _as_victim(data)))
    await deliver(engine, cp.envelope("user.deleted", cp.deleted("user", V), cp.T0 + 100))
    invite = await one(engine, t.organization_invitations, "orginv_by_v")
    assert invite["email_address"] == "invitee@acme.example" and invite["deleted_at"] is None
    assert invite["raw"]["email_address"] == "invitee@acme.example"
    assert "public_inviter_data" not in invite["raw"] and invite["inviter_id"] == V
    # A late copy of the invitation keeps nothing of the deleted inviter either.
    late = {**_as_victim(data), "updated_at": cp.T0 + 50}
    await deliver(engine, cp.envelope("organizationInvitation.revoked", late))
    assert (
        "public_inviter_data"
        not in (await one(engine, t.organization_invitations, "orginv_by_v"))["raw"]
    )
