"""The demo world `send-test-event --demo` sends: Clerk's example events with ids that refer to
each other, so the queries of docs/getting-started.md return rows.

Invariant: the events are the same on every call (fixed times and ids), so sending them again
changes nothing; each is Clerk's published example with fields overridden, never made up whole.
"""

from __future__ import annotations

import copy
from typing import Any

from service.dev.examples import published_example

T0 = 1_716_883_200_000  # ms, the time of Clerk's examples
DAY_MS = 86_400_000

JOHN = "user_demo_john"
JANE = "user_demo_jane"
ORG = "org_demo_acme"
ORG_SLUG = "acme-corp"
POSTS_CREATE = "org:posts:create"
POSTS_READ = "org:posts:read"
PLAN_SLUG = "pro"

_PERMISSIONS = {
    POSTS_CREATE: ("perm_demo_posts_create", "Create posts"),
    POSTS_READ: ("perm_demo_posts_read", "Read posts"),
}
# Role key -> (id, name, the permissions it grants).
_ROLES = {
    "org:admin": ("role_demo_admin", "Admin", [POSTS_CREATE, POSTS_READ]),
    "org:editor": ("role_demo_editor", "Editor", [POSTS_CREATE, POSTS_READ]),
    "org:member": ("role_demo_member", "Member", [POSTS_READ]),
}
# User id -> (first name, last name, email, role in the organization).
_PEOPLE = {
    JOHN: ("John", "Doe", "john@example.com", "org:admin"),
    JANE: ("Jane", "Doe", "jane@example.com", "org:editor"),
}
INVITED_EMAIL = "alex@example.com"


def _event(event_type: str, data: dict[str, Any], offset_s: int) -> dict[str, Any]:
    event = copy.deepcopy(published_example(event_type))
    event["data"] = data
    event["timestamp"] = T0 + offset_s * 1000
    return event


def _data(event_type: str, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(published_example(event_type)["data"])
    data.update(fields)
    return data


def _permission(key: str) -> dict[str, Any]:
    id_, name = _PERMISSIONS[key]
    return _data("permission.created", id=id_, key=key, name=name, description=name + ".")


def _role(key: str) -> dict[str, Any]:
    id_, name, grants = _ROLES[key]
    return _data(
        "role.created",
        id=id_,
        key=key,
        name=name,
        description=f"{name} of the organization.",
        is_creator_eligible=key == "org:admin",
        permissions=[_permission(grant) for grant in grants],
    )


def _email(user_id: str, address: str) -> dict[str, Any]:
    return {
        "id": "idn_" + user_id.removeprefix("user_"),
        "object": "email_address",
        "email_address": address,
        "reserved": False,
        "linked_to": [],
        "verification": {
            "object": "verification_otp",
            "status": "verified",
            "strategy": "email_code",
            "attempts": 1,
            "expire_at": None,
        },
        "created_at": T0,
        "updated_at": T0,
    }


def _user(user_id: str) -> dict[str, Any]:
    first, last, address, _ = _PEOPLE[user_id]
    email = _email(user_id, address)
    return _data(
        "user.created",
        id=user_id,
        first_name=first,
        last_name=last,
        email_addresses=[email],
        primary_email_address_id=email["id"],
        private_metadata={},
    )


def _organization() -> dict[str, Any]:
    return _data(
        "organization.created",
        id=ORG,
        name="Acme Corp",
        slug=ORG_SLUG,
        created_by=JOHN,
        members_count=len(_PEOPLE),
        pending_invitations_count=1,
    )


def _membership(user_id: str) -> dict[str, Any]:
    first, last, address, role = _PEOPLE[user_id]
    example = published_example("organizationMembership.created")["data"]
    return _data(
        "organizationMembership.created",
        id="orgmem_" + user_id.removeprefix("user_"),
        organization=_organization(),
        role=role,
        role_name=_ROLES[role][1],
        permissions=_ROLES[role][2],
        public_user_data={
            **example["public_user_data"],
            "user_id": user_id,
            "first_name": first,
            "last_name": last,
            "identifier": address,
        },
    )


def _invitation() -> dict[str, Any]:
    return _data(
        "organizationInvitation.created",
        id="orginv_demo_alex",
        organization_id=ORG,
        email_address=INVITED_EMAIL,
        role="org:member",
        role_name="Member",
        status="pending",
        expires_at=T0 + 30 * DAY_MS,
        url="https://accounts.example.com/accept-invitation?token=demo",
        # The spec requires who invited (Clerk's example leaves it out): John, the admin.
        inviter_id=JOHN,
        public_inviter_data={
            "user_id": JOHN,
            "first_name": _PEOPLE[JOHN][0],
            "last_name": _PEOPLE[JOHN][1],
            "image_url": "https://img.clerk.com/xxxxxx",
            "has_image": False,
            "identifier": _PEOPLE[JOHN][2],
        },
    )


def _session() -> dict[str, Any]:
    user = _user(JOHN)
    return _data(
        "session.created",
        id="sess_demo_john",
        client_id="client_demo_john",
        user_id=JOHN,
        user=user,
        status="active",
        last_active_organization_id=ORG,
        expire_at=T0 + 7 * DAY_MS,
        abandon_at=T0 + 30 * DAY_MS,
    )


def _payer() -> dict[str, Any]:
    payer: dict[str, Any] = copy.deepcopy(
        published_example("subscription.created")["data"]["payer"]
    )
    payer.update(
        id="cpayer_demo_acme",
        email=_PEOPLE[JOHN][2],
        first_name=_PEOPLE[JOHN][0],
        last_name=_PEOPLE[JOHN][1],
        user_id="",
        organization_id=ORG,
        organization_name="Acme Corp",
    )
    return payer


def _subscription() -> dict[str, Any]:
    example = published_example("subscription.created")["data"]
    item: dict[str, Any] = copy.deepcopy(example["items"][0])
    plan_id = "cplan_demo_pro"
    item.update(
        id="csub_item_demo_acme",
        plan_id=plan_id,
        plan={**item["plan"], "id": plan_id, "slug": PLAN_SLUG, "name": "Pro"},
        payer=_payer(),
        subscription_id="csub_demo_acme",
        period_end=T0 + 30 * DAY_MS,
    )
    return _data(
        "subscription.created",
        id="csub_demo_acme",
        items=[item],
        latest_payment_id=None,
        payer=_payer(),
        payer_id="cpayer_demo_acme",
        payment_source_id=None,
        status="active",
    )


def demo_events() -> list[dict[str, Any]]:
    """The demo world as webhook envelopes, in the order Clerk would send them."""
    data = [
        *[("permission.created", _permission(key)) for key in _PERMISSIONS],
        *[("role.created", _role(key)) for key in _ROLES],
        *[("user.created", _user(user_id)) for user_id in _PEOPLE],
        ("organization.created", _organization()),
        *[("organizationMembership.created", _membership(user_id)) for user_id in _PEOPLE],
        ("organizationInvitation.created", _invitation()),
        ("session.created", _session()),
        ("subscription.created", _subscription()),
    ]
    return [_event(event_type, body, offset) for offset, (event_type, body) in enumerate(data)]
