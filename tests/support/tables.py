"""The replica tables by name, for tests that read them (the product reads them from the kinds
registry)."""

from service.kinds.billing_payment_attempts import billing_payment_attempts
from service.kinds.billing_plans import billing_plans
from service.kinds.billing_subscription_items import billing_subscription_items
from service.kinds.billing_subscriptions import billing_subscriptions
from service.kinds.domains import organization_domains
from service.kinds.invitations import organization_invitations
from service.kinds.memberships import organization_memberships
from service.kinds.organizations import organizations
from service.kinds.permissions import permissions
from service.kinds.roles import role_permissions, roles
from service.kinds.sessions import sessions
from service.kinds.user_identifiers import (
    email_addresses,
    enterprise_accounts,
    external_accounts,
    phone_numbers,
    web3_wallets,
)
from service.kinds.users import users
from service.kinds.waitlist_entries import waitlist_entries

__all__ = [
    "billing_payment_attempts",
    "billing_plans",
    "billing_subscription_items",
    "billing_subscriptions",
    "email_addresses",
    "enterprise_accounts",
    "external_accounts",
    "organization_domains",
    "organization_invitations",
    "organization_memberships",
    "organizations",
    "permissions",
    "phone_numbers",
    "role_permissions",
    "roles",
    "sessions",
    "users",
    "waitlist_entries",
    "web3_wallets",
]
