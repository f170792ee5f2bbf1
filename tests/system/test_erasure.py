"""Erasure end to end: a user who signed up, joined an organization by invitation and was
deleted in Clerk leaves no email address, phone number, name or username anywhere in a full
dump of the database (pg_dump or SQLite's own), inbox included; ERASE_DELETED_USERS=false keeps
the tombstone's last known state."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_batch
from service.clerk.rows import RowOptions
from tests.support import clerk_payloads as cp
from tests.support.databases import full_dump
from tests.support.settings import make_settings
from tests.support.signing import signed

U = "user_2erin0000000000000000000"
EMAIL = "erinna.quillfeather@example.org"
PHONE = "+15555550199"
FIRST, LAST, USERNAME = "Erinna", "Quillfeather", "erinq42"
IDENTIFYING = (EMAIL, PHONE, FIRST, LAST, USERNAME)


def life_in_clerk() -> list[dict[str, Any]]:
    user = cp.user(
        U,
        emails=[cp.email("idn_erin", EMAIL)],
        phone_numbers=[cp.phone("idn_erin_p", PHONE)],
        primary_phone_number_id="idn_erin_p",
        external_accounts=[cp.external_account("eac_erin", email_address=EMAIL, username=USERNAME)],
        first_name=FIRST,
        last_name=LAST,
        username=USERNAME,
    )
    member = cp.membership("orgmem_erin", user_id=U)
    member["public_user_data"] |= {
        "first_name": FIRST,
        "last_name": LAST,
        "identifier": EMAIL,
        "username": USERNAME,
    }
    invite = cp.invitation("orginv_erin", status="accepted", user_id=U, email_address=EMAIL)
    return [
        cp.envelope("user.created", user),
        cp.envelope("organization.created", cp.organization()),
        cp.envelope("organizationInvitation.accepted", invite),
        cp.envelope("organizationMembership.created", member),
        cp.envelope("user.updated", cp.user(U, updated_at=cp.T0 + 5, username=USERNAME)),
    ]


async def deliver(
    client: Any, engine: AsyncEngine, options: RowOptions, events: list[dict[str, Any]]
) -> None:
    """Through the webhook endpoint (signed, stored), then applied as the worker does."""
    for event in events:
        body, headers = signed(event)
        response = await client.post("/webhooks/clerk", content=body, headers=headers)
        assert response.status_code == 200, response.text
    while (await apply_batch(engine, options, 100)).claimed:
        pass


@pytest.mark.parametrize("erase", [True, False], ids=["erase", "keep"])
async def test_a_deleted_user_leaves_nothing_that_names_them(
    client_for: Any, db_url: str, redis_url: str, engine: AsyncEngine, erase: bool
) -> None:
    settings = make_settings(db_url, redis_url, erase_deleted_users=erase)
    options = RowOptions.of(settings)
    client = await client_for(settings)
    await deliver(client, engine, options, life_in_clerk())
    before = full_dump(db_url)
    for value in IDENTIFYING:
        assert value in before, value  # the dump does see what the replica holds

    deleted = cp.envelope("user.deleted", cp.deleted("user", U), cp.T0 + 1_000)
    await deliver(client, engine, options, [deleted])
    after = full_dump(db_url)
    assert U in after  # the tombstone stays
    left = [value for value in IDENTIFYING if value in after]
    # Erasing: nothing. Keeping: the tombstone's last known state, and the inbox bodies.
    assert left == ([] if erase else list(IDENTIFYING))
