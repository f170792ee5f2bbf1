"""Apply rules on PostgreSQL and SQLite: ordering, tombstones, cascades, identifiers."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_one
from service.clerk.rows import RowOptions
from service.inbox.store import Status
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import deliver, inbox_row, one, rows, store_event

U = "user_29w83sxmDNGwOuEthce5gg56FcC"
ORG = "org_29w9IfBrPmcpi0IeBVaKtA7R94W"
# The ordering rules for a deleted user's last known state, with erasure off (with it on, the
# tombstone keeps nothing personal: tests/kinds/test_erasure.py).
KEEP = RowOptions(erase_deleted_users=False)


def ms(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp() * 1000)


async def test_user_created_fills_user_and_identifiers(engine: AsyncEngine) -> None:
    data = cp.user(
        emails=[
            cp.email("idn_a", "a@example.org"),
            cp.email("idn_b", "b@example.org", "unverified"),
        ],
        primary_email_id="idn_b",
        phone_numbers=[cp.phone("idn_p", "+15555550100")],
        primary_phone_number_id="idn_p",
        external_accounts=[cp.external_account("eac_1", identification_id="idn_b")],
        username="jane",
    )
    assert await deliver(engine, cp.envelope("user.created", data)) is Status.APPLIED

    user = await one(engine, t.users, U)
    assert user["primary_email_address"] == "b@example.org"
    assert user["primary_phone_number"] == "+15555550100"
    assert user["username"] == "jane"
    assert user["private_metadata"] == {"plan": "secret"}
    assert user["created_at"] == datetime.fromtimestamp(cp.T0 / 1000, tz=UTC)
    assert user["raw"]["id"] == U
    emails = await rows(engine, t.email_addresses, user_id=U)
    assert [(e["id"], e["is_primary"], e["verification_status"]) for e in emails] == [
        ("idn_a", False, "verified"),
        ("idn_b", True, "unverified"),
    ]
    (account,) = await rows(engine, t.external_accounts, user_id=U)
    assert account["provider"] == "oauth_google" and account["is_primary"] is True
    (phone,) = await rows(engine, t.phone_numbers, user_id=U)
    assert phone["phone_number"] == "+15555550100" and phone["is_primary"] is True


async def test_older_snapshot_arriving_late_changes_nothing(engine: AsyncEngine) -> None:
    new = cp.user(updated_at=cp.T0 + 2000, first_name="New", emails=[cp.email("idn_n", "n@x.org")])
    old = cp.user(updated_at=cp.T0 + 1000, first_name="Old", emails=[cp.email("idn_o", "o@x.org")])
    await deliver(engine, cp.envelope("user.updated", new))
    assert await deliver(engine, cp.envelope("user.updated", old)) is Status.APPLIED

    user = await one(engine, t.users, U)
    assert user["first_name"] == "New"
    assert ms(user["updated_at"]) == cp.T0 + 2000
    assert [e["id"] for e in await rows(engine, t.email_addresses, user_id=U)] == ["idn_n"]


async def test_identifiers_follow_the_newest_snapshot(engine: AsyncEngine) -> None:
    first = cp.user(emails=[cp.email("idn_1", "one@x.org"), cp.email("idn_2", "two@x.org")])
    second = cp.user(
        updated_at=cp.T0 + 1,
        emails=[cp.email("idn_2", "two@x.org"), cp.email("idn_3", "three@x.org")],
        primary_email_id="idn_3",
    )
    await deliver(engine, cp.envelope("user.created", first))
    await deliver(engine, cp.envelope("user.updated", second))
    emails = await rows(engine, t.email_addresses, user_id=U)
    assert [(e["id"], e["is_primary"]) for e in emails] == [("idn_2", False), ("idn_3", True)]
    assert (await one(engine, t.users, U))["primary_email_address"] == "three@x.org"


async def test_tie_in_updated_at_later_arrival_wins(engine: AsyncEngine) -> None:
    await deliver(engine, cp.envelope("user.updated", cp.user(first_name="First")))
    await deliver(engine, cp.envelope("user.updated", cp.user(first_name="Second")))
    assert (await one(engine, t.users, U))["first_name"] == "Second"


async def test_redelivery_of_one_svix_id_applies_once(engine: AsyncEngine) -> None:
    svix_id = await store_event(engine, cp.envelope("user.created", cp.user()))
    again = await store_event(engine, cp.envelope("user.created", cp.user()), svix_id=svix_id)
    assert again == svix_id
    assert await apply_one(engine, svix_id, RowOptions()) is Status.APPLIED
    assert await apply_one(engine, svix_id, RowOptions()) is None
    row = await inbox_row(engine, svix_id)
    assert row["status"] == Status.APPLIED and row["attempts"] == 1 and row["object_id"] == U


async def test_delete_keeps_a_tombstone_at_the_envelope_time_in_ms(engine: AsyncEngine) -> None:
    await deliver(engine, cp.envelope("user.created", cp.user()), KEEP)
    deleted_ms = cp.T0 + 5_432
    await deliver(engine, cp.envelope("user.deleted", cp.deleted("user", U), deleted_ms), KEEP)
    user = await one(engine, t.users, U)
    assert ms(user["deleted_at"]) == deleted_ms
    assert user["first_name"] == "Example"  # the last known state stays readable
    assert await rows(engine, t.email_addresses, user_id=U) == []


async def test_envelope_timestamp_in_seconds_is_the_end_of_that_second(
    engine: AsyncEngine,
) -> None:
    # Clerk's published examples send seconds. An update made at .700 of the same second must
    # not be able to resurrect the user deleted "at" that second; its content (taken before
    # the deletion) is kept as the last known state, and no identifiers come back.
    seconds = cp.T0 // 1000 + 10
    await deliver(engine, cp.envelope("user.deleted", cp.deleted("user", U), seconds), KEEP)
    assert ms((await one(engine, t.users, U))["deleted_at"]) == seconds * 1000 + 999
    late = cp.user(updated_at=seconds * 1000 + 700, first_name="Ghost")
    await deliver(engine, cp.envelope("user.updated", late), KEEP)
    user = await one(engine, t.users, U)
    assert ms(user["deleted_at"]) == seconds * 1000 + 999 and user["first_name"] == "Ghost"
    assert await rows(engine, t.email_addresses, user_id=U) == []


async def test_snapshot_older_than_the_deletion_never_resurrects(engine: AsyncEngine) -> None:
    await deliver(engine, cp.envelope("user.created", cp.user()), KEEP)
    await deliver(engine, cp.envelope("user.deleted", cp.deleted("user", U), cp.T0 + 10_000), KEEP)
    late = cp.user(updated_at=cp.T0 + 20_000, first_name="Zombie")
    await deliver(engine, cp.envelope("user.updated", late), KEEP)
    user = await one(engine, t.users, U)
    assert ms(user["deleted_at"]) == cp.T0 + 10_000
    assert user["first_name"] == "Example"
    assert await rows(engine, t.email_addresses, user_id=U) == []


async def test_deletion_without_envelope_timestamp_uses_arrival_time(engine: AsyncEngine) -> None:
    before = datetime.now(UTC)
    await deliver(
        engine, cp.envelope("organization.deleted", cp.deleted("organization", ORG), None)
    )
    org = await one(engine, t.organizations, ORG)
    assert org["deleted_at"] is not None and org["deleted_at"] >= before.replace(microsecond=0)


async def test_user_deletion_ends_memberships_and_late_ones_arrive_ended(
    engine: AsyncEngine,
) -> None:
    await deliver(engine, cp.envelope("organizationMembership.created", cp.membership("orgmem_1")))
    await deliver(engine, cp.envelope("user.deleted", cp.deleted("user", U), cp.T0 + 50))
    assert (
        ms((await one(engine, t.organization_memberships, "orgmem_1"))["deleted_at"]) == cp.T0 + 50
    )
    other_org = cp.membership("orgmem_2", org_id="org_other")
    await deliver(engine, cp.envelope("organizationMembership.created", other_org))
    assert (
        ms((await one(engine, t.organization_memberships, "orgmem_2"))["deleted_at"]) == cp.T0 + 50
    )


async def test_organization_deletion_ends_memberships_invitations_domains(
    engine: AsyncEngine,
) -> None:
    await deliver(engine, cp.envelope("organization.created", cp.organization()))
    await deliver(engine, cp.envelope("organizationMembership.created", cp.membership()))
    await deliver(engine, cp.envelope("organizationInvitation.created", cp.invitation()))
    await deliver(engine, cp.envelope("organizationDomain.created", cp.domain()))
    await deliver(
        engine, cp.envelope("organization.deleted", cp.deleted("organization", ORG), cp.T0 + 9)
    )
    for table in (
        t.organizations,
        t.organization_memberships,
        t.organization_invitations,
        t.organization_domains,
    ):
        (row,) = await rows(engine, table)
        assert ms(row["deleted_at"]) == cp.T0 + 9, table.name
    late = cp.invitation("orginv_late")
    await deliver(engine, cp.envelope("organizationInvitation.created", late))
    assert (
        ms((await one(engine, t.organization_invitations, "orginv_late"))["deleted_at"])
        == cp.T0 + 9
    )


async def test_invitation_accepted_and_domain_lifecycle(engine: AsyncEngine) -> None:
    await deliver(engine, cp.envelope("organizationInvitation.created", cp.invitation()))
    accepted = cp.invitation(status="accepted", updated_at=cp.T0 + 5, user_id=U)
    await deliver(engine, cp.envelope("organizationInvitation.accepted", accepted))
    inv = await one(engine, t.organization_invitations, "orginv_29w9IfBrPmcpi0IeBVaKtA7R94W")
    assert (inv["status"], inv["user_id"], inv["organization_id"]) == ("accepted", U, ORG)

    await deliver(engine, cp.envelope("organizationDomain.created", cp.domain()))
    dom = await one(engine, t.organization_domains, "orgdmn_29w9IfBrPmcpi0IeBVaKtA7R94W")
    assert (dom["name"], dom["verification_status"]) == ("acme.example", "verified")
    gone = cp.deleted("organization_domain", "orgdmn_29w9IfBrPmcpi0IeBVaKtA7R94W")
    await deliver(engine, cp.envelope("organizationDomain.deleted", gone, cp.T0 + 3))
    assert ms((await one(engine, t.organization_domains, dom["id"]))["deleted_at"]) == cp.T0 + 3


async def test_organization_upsert_and_private_metadata_opt_out(engine: AsyncEngine) -> None:
    options = RowOptions(store_private_metadata=False)
    await deliver(engine, cp.envelope("organization.created", cp.organization()), options)
    await deliver(engine, cp.envelope("user.created", cp.user()), options)
    org = await one(engine, t.organizations, ORG)
    user = await one(engine, t.users, U)
    assert org["name"] == "Acme Inc" and org["members_count"] == 1
    for row in (org, user):
        assert row["private_metadata"] is None
        assert "private_metadata" not in row["raw"]


async def test_payload_that_does_not_fit_is_failed_and_others_flow(engine: AsyncEngine) -> None:
    poison = cp.envelope("user.updated", {"id": U, "updated_at": "yesterday"})
    svix_id = await store_event(engine, poison)
    assert await apply_one(engine, svix_id, RowOptions()) is Status.FAILED
    row = await inbox_row(engine, svix_id)
    assert row["status"] == Status.FAILED
    assert "updated_at" in row["last_error"] and "created_at" in row["last_error"]
    assert await rows(engine, t.users) == []
    assert await deliver(engine, cp.envelope("user.created", cp.user())) is Status.APPLIED


async def test_value_the_database_refuses_is_failed_not_retried(engine: AsyncEngine) -> None:
    # An id longer than the column allows: PostgreSQL refuses it, SQLite stores it. Either way
    # the event settles; it never loops as a retry.
    data = cp.organization(id="org_" + "x" * 300)
    outcome = await deliver(engine, cp.envelope("organization.created", data))
    if engine.dialect.name == "postgresql":
        assert outcome is Status.FAILED
        assert await rows(engine, t.organizations) == []
    else:
        assert outcome is Status.APPLIED


async def test_unknown_types_are_ignored_not_stored(engine: AsyncEngine) -> None:
    svix_id = await store_event(engine, cp.envelope("email.created", {"id": "ema_1"}))
    row = await inbox_row(engine, svix_id)
    assert (row["status"], row["body"]) == (Status.IGNORED, None)
    assert await apply_one(engine, svix_id, RowOptions()) is None


async def test_last_state_before_deletion_does_not_depend_on_order(engine: AsyncEngine) -> None:
    v1 = cp.envelope("user.updated", cp.user(updated_at=cp.T0, first_name="V1"))
    v2 = cp.envelope("user.updated", cp.user(updated_at=cp.T0 + 10, first_name="V2"))
    gone = cp.envelope("user.deleted", cp.deleted("user", U), cp.T0 + 100)
    for event in (v1, gone, v2):
        await deliver(engine, event, KEEP)
    user = await one(engine, t.users, U)
    assert (user["first_name"], ms(user["updated_at"]), ms(user["deleted_at"])) == (
        "V2",
        cp.T0 + 10,
        cp.T0 + 100,
    )


async def test_children_keep_the_earliest_end_time(engine: AsyncEngine) -> None:
    m = cp.membership("orgmem_M")
    await deliver(engine, cp.envelope("organizationMembership.created", m))
    await deliver(engine, cp.envelope("organizationMembership.deleted", m, cp.T0 + 100))
    await deliver(engine, cp.envelope("user.deleted", cp.deleted("user", U), cp.T0 + 50))
    assert (
        ms((await one(engine, t.organization_memberships, "orgmem_M"))["deleted_at"]) == cp.T0 + 50
    )


async def test_out_of_range_times_fail_the_event_not_the_worker(engine: AsyncEngine) -> None:
    too_far = cp.envelope("user.created", cp.user(updated_at=10**19))
    assert await deliver(engine, too_far) is Status.FAILED
    stamped = cp.envelope("user.created", cp.user(), timestamp=10**19)
    svix_id = await store_event(engine, stamped)
    assert (await inbox_row(engine, svix_id))["event_timestamp_ms"] is None
    assert await apply_one(engine, svix_id, RowOptions()) is Status.APPLIED
