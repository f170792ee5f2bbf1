"""What a kind declares: lookups format from the stored row; tables; whether new rows copy."""

from __future__ import annotations

from service.kinds import registry
from service.kinds.declaration import Lookup
from tests.support import tables as t

IN_LIST = Lookup("organizations/{organization_id}/memberships", {"user_id": "{user_id}"})


def test_lookup_columns_start_with_id_without_repeats() -> None:
    assert Lookup("users/{id}").columns == ("id",)
    assert IN_LIST.columns == ("id", "organization_id", "user_id")
    both = Lookup("orgs/{organization_id}/things/{id}", {"of": "{organization_id}"})
    assert both.columns == ("id", "organization_id")


def test_lookup_request_formats_path_and_params() -> None:
    row = {"id": "m_1", "organization_id": "org_1", "user_id": "user_1", "role": "x"}
    assert IN_LIST.request(row) == ("organizations/org_1/memberships", {"user_id": "user_1"})
    assert Lookup("users/{id}").request({"id": "user_1"}) == ("users/user_1", {})


def test_lookup_request_is_none_when_a_needed_column_is_empty() -> None:
    assert IN_LIST.request({"id": "m_1", "organization_id": None, "user_id": "u"}) is None
    assert IN_LIST.request({"id": "m_1", "organization_id": "org_1", "user_id": ""}) is None
    assert IN_LIST.request({"id": "", "organization_id": "org_1", "user_id": "u"}) is None
    assert IN_LIST.request({"organization_id": "org_1", "user_id": "u"}) is None


def test_kind_tables_are_its_table_then_the_owned_ones() -> None:
    assert registry.kind("users").tables == (
        t.users,
        t.email_addresses,
        t.phone_numbers,
        t.external_accounts,
        t.web3_wallets,
        t.enterprise_accounts,
    )
    assert registry.kind("roles").tables == (t.roles, t.role_permissions)
    assert registry.kind("organizations").tables == (t.organizations,)
