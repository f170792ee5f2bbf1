"""The replica tables by name, for tests that read them (the product reads them from the kinds
registry)."""

from service.kinds.domains import organization_domains
from service.kinds.invitations import organization_invitations
from service.kinds.memberships import organization_memberships
from service.kinds.organizations import organizations
from service.kinds.users import email_addresses, external_accounts, phone_numbers, users

__all__ = [
    "email_addresses",
    "external_accounts",
    "organization_domains",
    "organization_invitations",
    "organization_memberships",
    "organizations",
    "phone_numbers",
    "users",
]
