"""A user's web3 wallets and enterprise accounts: rows of their own, exactly those of the
newest applied snapshot (email addresses, phone numbers and external accounts: test_users)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from service.clerk.rows import RowOptions
from service.kinds.users import build
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import deliver, rows

U = "user_29w83sxmDNGwOuEthce5gg56FcC"


def test_wallets_and_enterprise_accounts_become_rows() -> None:
    data = cp.user(
        web3_wallets=[cp.web3_wallet("idn_w1", "0xabc"), cp.web3_wallet(None, "0xnoid")],
        primary_web3_wallet_id="idn_w1",
        enterprise_accounts=[cp.enterprise_account("eac_e1")],
    )
    snap = build(data, RowOptions())
    (w,) = snap.children[t.web3_wallets]
    assert (w["id"], w["web3_wallet"], w["is_primary"]) == ("idn_w1", "0xabc", True)
    (e,) = snap.children[t.enterprise_accounts]
    assert (e["provider"], e["protocol"], e["email_address"], e["active"]) == (
        "saml_okta",
        "saml",
        "jane@corp.example",
        True,
    )
    assert set(e) == {c.name for c in t.enterprise_accounts.columns}


async def test_they_follow_the_newest_snapshot(engine: AsyncEngine) -> None:
    first = cp.user(
        web3_wallets=[cp.web3_wallet("idn_w1", "0xabc")],
        enterprise_accounts=[cp.enterprise_account("e1")],
    )
    second = cp.user(updated_at=cp.T0 + 1, web3_wallets=[cp.web3_wallet("idn_w2", "0xdef")])
    await deliver(engine, cp.envelope("user.created", first))
    await deliver(engine, cp.envelope("user.updated", second))
    assert [w["id"] for w in await rows(engine, t.web3_wallets, user_id=U)] == ["idn_w2"]
    assert await rows(engine, t.enterprise_accounts, user_id=U) == []
