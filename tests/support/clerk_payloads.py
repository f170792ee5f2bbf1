"""Clerk payloads shaped like the published examples (clerk-facts.md section 1), valid under both
of Clerk's specs (tests/system/test_clerk_spec.py checks them): webhook `data` and Backend API
answers carry the same objects."""

from __future__ import annotations

from typing import Any

T0 = 1_716_883_200_000  # ms, the spec examples' time


def _otp(status: str, strategy: str) -> dict[str, Any]:
    return {
        "object": "verification_otp",
        "status": status,
        "strategy": strategy,
        "attempts": 1,
        "expire_at": None,
    }


def _domain_verification() -> dict[str, Any]:
    return {
        "status": "verified",
        "strategy": "email_code",
        "attempts": 1,
        "expire_at": None,
        "verified_at": T0,
    }


def email(id: str, address: str, status: str = "verified") -> dict[str, Any]:
    return {
        "id": id,
        "object": "email_address",
        "email_address": address,
        "reserved": False,
        "linked_to": [],
        "verification": _otp(status, "email_code"),
        "created_at": T0,
        "updated_at": T0,
    }


def phone(id: str, number: str) -> dict[str, Any]:
    return {
        "id": id,
        "object": "phone_number",
        "phone_number": number,
        "reserved_for_second_factor": False,
        "default_second_factor": False,
        "reserved": False,
        "linked_to": [],
        "verification": _otp("verified", "phone_code"),
        "created_at": T0,
        "updated_at": T0,
    }


def external_account(id: str, provider: str = "oauth_google", **extra: Any) -> dict[str, Any]:
    return {
        "id": id,
        "object": "external_account",
        "provider": provider,
        "identification_id": extra.pop("identification_id", None),
        "provider_user_id": "1122334455",
        "approved_scopes": "email profile",
        "email_address": extra.pop("email_address", "jane@gmail.example"),
        "first_name": "Jane",
        "last_name": "Doe",
        "verification": {
            "object": "verification_oauth",
            "status": "verified",
            "strategy": "oauth_google",
            "attempts": None,
            "expire_at": None,
        },
        "public_metadata": {},
        "created_at": T0,
        "updated_at": T0,
        **extra,
    }


def user(
    id: str = "user_29w83sxmDNGwOuEthce5gg56FcC",
    *,
    updated_at: int = T0,
    created_at: int = T0,
    emails: list[dict[str, Any]] | None = None,
    primary_email_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    emails = (
        emails
        if emails is not None
        else [email("idn_29w83yL7CwVlJXylYLxcslromF1", "example@example.org")]
    )
    data: dict[str, Any] = {
        "object": "user",
        "id": id,
        "external_id": None,
        "username": None,
        "first_name": "Example",
        "last_name": "Example",
        "image_url": "https://img.clerk.com/xxxxxx",
        "has_image": True,
        "primary_email_address_id": primary_email_id or (emails[0]["id"] if emails else None),
        "primary_phone_number_id": None,
        "primary_web3_wallet_id": None,
        "email_addresses": emails,
        "phone_numbers": [],
        "web3_wallets": [],
        "passkeys": [],
        "external_accounts": [],
        "saml_accounts": [],
        "enterprise_accounts": [],
        "public_metadata": {},
        "private_metadata": {"plan": "secret"},
        "unsafe_metadata": {},
        "password_enabled": True,
        "two_factor_enabled": False,
        "totp_enabled": False,
        "backup_code_enabled": False,
        "mfa_enabled_at": None,
        "mfa_disabled_at": None,
        "lockout_expires_in_seconds": None,
        "verification_attempts_remaining": 100,
        "delete_self_enabled": True,
        "create_organization_enabled": True,
        "legal_accepted_at": None,
        "banned": False,
        "locked": False,
        "last_sign_in_at": T0,
        "last_active_at": T0,
        "created_at": created_at,
        "updated_at": updated_at,
    }
    data.update(fields)
    return data


def web3_wallet(id: str | None, address: str) -> dict[str, Any]:
    """A wallet; `id` None: one as the spec allows, without an id."""
    found: dict[str, Any] = {
        "object": "web3_wallet",
        "web3_wallet": address,
        "verification": None,
        "created_at": T0,
        "updated_at": T0,
    }
    return {"id": id, **found} if id else found


def enterprise_account(id: str, email_address: str = "jane@corp.example") -> dict[str, Any]:
    return {
        "id": id,
        "object": "enterprise_account",
        "protocol": "saml",
        "provider": "saml_okta",
        "active": True,
        "email_address": email_address,
        "provider_user_id": "okta|42",
        "enterprise_connection_id": "entconn_1",
        "public_metadata": {},
        "verification": None,
        "last_authenticated_at": T0,
    }


def organization(
    id: str = "org_29w9IfBrPmcpi0IeBVaKtA7R94W",
    *,
    updated_at: int = T0,
    created_at: int = T0,
    **fields: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "object": "organization",
        "id": id,
        "name": "Acme Inc",
        "slug": "acme-inc",
        "image_url": "https://img.clerk.com/xxxxxx",
        "has_image": True,
        "members_count": 1,
        "max_allowed_memberships": 5,
        "admin_delete_enabled": True,
        "public_metadata": {},
        "private_metadata": {"billing": "secret"},
        "created_by": "user_29w83sxmDNGwOuEthce5gg56FcC",
        "created_at": created_at,
        "updated_at": updated_at,
    }
    data.update(fields)
    return data


def membership(
    id: str = "orgmem_29w8XjGrpzt3jJqPnh2gmXS0c1N",
    *,
    org_id: str = "org_29w9IfBrPmcpi0IeBVaKtA7R94W",
    user_id: str = "user_29w83sxmDNGwOuEthce5gg56FcC",
    role: str = "org:member",
    updated_at: int = T0,
    created_at: int = T0,
) -> dict[str, Any]:
    return {
        "object": "organization_membership",
        "id": id,
        "role": role,
        "role_name": "Member" if role == "org:member" else "Admin",
        "permissions": ["org:posts:read"],
        "public_metadata": {},
        "private_metadata": {},
        "organization": organization(org_id),
        "public_user_data": {
            "user_id": user_id,
            "first_name": "Jane",
            "last_name": "Doe",
            "image_url": "https://img.clerk.com/xxxxxx",
            "profile_image_url": "https://img.clerk.com/xxxxxx",
            "has_image": True,
            "identifier": "jane.doe@acme.example",
        },
        "created_at": created_at,
        "updated_at": updated_at,
    }


def invitation(
    id: str = "orginv_29w9IfBrPmcpi0IeBVaKtA7R94W",
    *,
    org_id: str = "org_29w9IfBrPmcpi0IeBVaKtA7R94W",
    status: str = "pending",
    updated_at: int = T0,
    created_at: int = T0,
    **fields: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "object": "organization_invitation",
        "id": id,
        "email_address": "invitee@acme.example",
        "role": "org:member",
        "role_name": "Member",
        "organization_id": org_id,
        "status": status,
        "public_metadata": {},
        "private_metadata": {},
        "expires_at": T0 + 30 * 86_400_000,
        "url": None,
        "inviter_id": "user_29w83sxmDNGwOuEthce5gg56FcC",
        "public_inviter_data": {
            "user_id": "user_29w83sxmDNGwOuEthce5gg56FcC",
            "first_name": "Example",
            "last_name": "Example",
            "image_url": "https://img.clerk.com/xxxxxx",
            "has_image": True,
            "identifier": "example@example.org",
        },
        "created_at": created_at,
        "updated_at": updated_at,
    }
    data.update(fields)
    return data


def domain(
    id: str = "orgdmn_29w9IfBrPmcpi0IeBVaKtA7R94W",
    *,
    org_id: str = "org_29w9IfBrPmcpi0IeBVaKtA7R94W",
    updated_at: int = T0,
    created_at: int = T0,
) -> dict[str, Any]:
    return {
        "object": "organization_domain",
        "id": id,
        "organization_id": org_id,
        "name": "acme.example",
        "enrollment_mode": "automatic_invitation",
        "affiliation_email_address": None,
        "verification": _domain_verification(),
        "affiliation_verification": _domain_verification(),
        "ownership_verification": None,
        "total_pending_invitations": 0,
        "total_pending_suggestions": 0,
        "created_at": created_at,
        "updated_at": updated_at,
    }


# The instance the test events come from, and the fake Backend API's key belongs to.
INSTANCE_ID = "ins_123"


def deleted(obj: str, id: str, **extra: Any) -> dict[str, Any]:
    return {"object": obj, "id": id, "deleted": True, **extra}


def envelope(event_type: str, data: dict[str, Any], timestamp: int | None = T0) -> dict[str, Any]:
    env: dict[str, Any] = {
        "type": event_type,
        "object": "event",
        "data": data,
        "instance_id": INSTANCE_ID,
        "event_attributes": {"http_request": {"client_ip": "192.0.2.1", "user_agent": "x"}},
    }
    if timestamp is not None:
        env["timestamp"] = timestamp
    return env


def permission(
    id: str = "perm_2g7np7Hrk0SN6kj5EDMLDaKNL0S",
    *,
    key: str = "org:posts:create",
    updated_at: int = T0,
    created_at: int = T0,
) -> dict[str, Any]:
    return {
        "object": "permission",
        "id": id,
        "name": "Create Posts",
        "key": key,
        "description": "Ability to create new posts in the organization",
        "type": "custom",
        "created_at": created_at,
        "updated_at": updated_at,
    }


def role(
    id: str = "role_2g7np7Hrk0SN6kj5EDMLDaKNL0S",
    *,
    key: str = "org:content_manager",
    permissions: list[dict[str, Any]] | None = None,
    updated_at: int = T0,
    created_at: int = T0,
) -> dict[str, Any]:
    return {
        "object": "role",
        "id": id,
        "name": "Content Manager",
        "key": key,
        "description": "Can manage all content in the organization",
        "is_creator_eligible": False,
        "permissions": [permission()] if permissions is None else permissions,
        "created_at": created_at,
        "updated_at": updated_at,
    }


def waitlist_entry(
    id: str = "wle_2g7np7Hrk0SN6kj5EDMLDaKNL0S",
    *,
    email_address: str = "john.doe@example.com",
    status: str = "pending",
    updated_at: int = T0,
    created_at: int = T0,
) -> dict[str, Any]:
    return {
        "object": "waitlist_entry",
        "id": id,
        "email_address": email_address,
        "status": status,
        "is_locked": False,
        "created_at": created_at,
        "updated_at": updated_at,
        "invitation": None,
    }


def session(
    id: str = "sess_2g7np7Hrk0SN6kj5EDMLDaKNL0S",
    *,
    user_id: str = "user_29w83sxmDNGwOuEthce5gg56FcC",
    status: str = "active",
    updated_at: int = T0,
    created_at: int = T0,
) -> dict[str, Any]:
    return {
        "object": "session",
        "id": id,
        "user_id": user_id,
        "client_id": "client_2g7np7Hrk0SN6kj5EDMLDaKNL0S",
        "status": status,
        "last_active_organization_id": None,
        "actor": None,
        "latest_activity": {
            "object": "session_activity",
            "id": "sess_activity_2g7np7Hrk0SN6kj5EDMLDaKNL0S",
            "device_type": "Macintosh",
            "is_mobile": False,
            "browser_name": "Chrome",
            "browser_version": "128.0.0.0",
            "ip_address": "203.0.113.7",
            "city": "Lisbon",
            "country": "PT",
        },
        "last_active_at": updated_at,
        "expire_at": T0 + 7 * 86_400_000,
        "abandon_at": T0 + 30 * 86_400_000,
        "created_at": created_at,
        "updated_at": updated_at,
        "user": user(user_id),
    }


def _money(amount: int) -> dict[str, Any]:
    return {
        "amount": amount,
        "amount_formatted": f"{amount / 100:.2f}",
        "currency": "USD",
        "currency_symbol": "$",
    }


def billing_plan(id: str = "cplan_pro", *, slug: str = "pro", amount: int = 2000) -> dict[str, Any]:
    """A plan as the Backend API lists it (webhooks carry a shorter one inside items)."""
    return {
        "object": "commerce_plan",
        "id": id,
        "name": "Pro Plan",
        "fee": _money(amount),
        "annual_monthly_fee": _money(amount * 10 // 12),
        "annual_fee": _money(amount * 10),
        "description": None,
        "product_id": "cprod_1",
        "is_default": False,
        "is_recurring": True,
        "publicly_visible": True,
        "has_base_fee": True,
        "for_payer_type": "org",
        "slug": slug,
        "avatar_url": None,
        "free_trial_enabled": False,
        "free_trial_days": None,
    }


def _payer(user_id: str, organization_id: str) -> dict[str, Any]:
    return {
        "object": "commerce_payer",
        "id": "cpayer_1",
        "user_id": user_id,
        "first_name": "Jane",
        "last_name": "Payer",
        "email": "jane.payer@example.org",
        "organization_id": organization_id,
        "organization_name": "Acme Inc" if organization_id else "",
        "image_url": "https://img.clerk.com/xxxxxx",
        "created_at": T0,
        "updated_at": T0,
    }


def subscription_item(
    id: str = "csub_item_1",
    *,
    subscription_id: str | None = None,
    plan_slug: str = "pro",
    status: str = "active",
    user_id: str = "",
    organization_id: str = "org_29w9IfBrPmcpi0IeBVaKtA7R94W",
    updated_at: int = T0,
    created_at: int = T0,
) -> dict[str, Any]:
    """An item as webhooks send it, inside a subscription or alone; "" for the absent payer."""
    return {
        "object": "commerce_subscription_item",
        "id": id,
        "status": status,
        "is_free_trial": False,
        "created_at": created_at,
        "updated_at": updated_at,
        "period_start": T0,
        "period_end": T0 + 30 * 86_400_000,
        "interval": "month",
        "plan_id": f"cplan_{plan_slug}",
        "plan": {
            "id": f"cplan_{plan_slug}",
            "slug": plan_slug,
            "name": plan_slug.title(),
            "is_recurring": True,
            "amount": 2000,
            "currency": "USD",
        },
        "payer": _payer(user_id, organization_id),
        "subscription_id": subscription_id,
    }


def subscription(
    id: str = "csub_1",
    *,
    items: list[dict[str, Any]] | None = None,
    user_id: str = "",
    organization_id: str = "org_29w9IfBrPmcpi0IeBVaKtA7R94W",
    status: str = "active",
    updated_at: int = T0,
    created_at: int = T0,
) -> dict[str, Any]:
    return {
        "object": "commerce_subscription",
        "id": id,
        "status": status,
        "active_at": T0,
        "canceled_at": None,
        "created_at": created_at,
        "ended_at": None,
        "past_due_at": None,
        "updated_at": updated_at,
        "latest_payment_id": None,
        "payer_id": "cpayer_1",
        "payer": _payer(user_id, organization_id),
        "payment_source_id": None,
        "items": [subscription_item(organization_id=organization_id, user_id=user_id)]
        if items is None
        else items,
    }


def listed_subscription_item(
    id: str = "csub_item_1",
    *,
    plan_slug: str = "pro",
    status: str = "active",
    created_at: int = T0,
    updated_at: int = T0,
) -> dict[str, Any]:
    """An item as the Backend API lists it (its plan in the API's own shape)."""
    return {
        "object": "commerce_subscription_item",
        "id": id,
        "instance_id": INSTANCE_ID,
        "status": status,
        "plan_id": f"cplan_{plan_slug}",
        "plan": billing_plan(f"cplan_{plan_slug}", slug=plan_slug),
        "plan_period": "month",
        "payer_id": "cpayer_1",
        "is_free_trial": False,
        "period_start": T0,
        "period_end": T0 + 30 * 86_400_000,
        "canceled_at": None,
        "past_due_at": None,
        "ended_at": None,
        "created_at": created_at,
        "updated_at": updated_at,
    }


def payment_attempt(
    id: str = "pa_1",
    *,
    statement_key: str = "statement_id",
    user_id: str = "user_1",
    organization_id: str = "",
    status: str = "paid",
    created_at: int = T0,
    updated_at: int = T0 + 1,
) -> dict[str, Any]:
    """A payment attempt as webhooks send it; `statement_key` "invoice_id" as older API
    versions name the statement."""
    data: dict[str, Any] = {
        "id": id,
        "instance_id": INSTANCE_ID,
        "payment_id": "cpa_1",
        "invoice_id": "",
        "statement_id": "",
        "gateway_external_id": "pi_1",
        "status": status,
        "created_at": created_at,
        "updated_at": updated_at,
        "paid_at": updated_at if status == "paid" else None,
        "failed_at": None,
        "failed_reason": None,
        "billing_date": T0,
        "charge_type": "recurring",
        "payee": {
            "id": "cpayee_1",
            "gateway_type": "stripe",
            "gateway_external_id": "acct_1",
            "gateway_status": "active",
        },
        "payer": _payer(user_id, organization_id),
        "totals": {"subtotal": _money(2000), "tax_total": _money(200), "grand_total": _money(2200)},
        "payment_source": {
            "id": "cps_1",
            "gateway": "stripe",
            "gateway_external_id": "pm_1",
            "gateway_external_account_id": "acct_1",
            "payment_method": "card",
            "status": "active",
            "card_type": "visa",
            "last4": "4242",
        },
        "subscription_items": [],
    }
    data[statement_key] = "stmt_1"
    return data
