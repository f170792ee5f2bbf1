"""What Clerk's billing objects share: the payer (a user or an organization; Clerk sends "" for
the one that is absent, stored NULL) and the version of an object whose payload has no time."""

from __future__ import annotations

from datetime import datetime

from service.clerk import payloads as p
from service.clerk.payloads import PayloadError
from service.clerk.rows import Row, RowOptions
from service.clerk.timestamps import from_ms


class Payer(p.Model):
    id: str | None = None
    user_id: str | None = None
    organization_id: str | None = None


def payer_columns(payer: Payer | None, payer_id: str | None) -> Row:
    """payer_id, user_id, organization_id: NULL where Clerk sent nothing or ""."""
    return {
        "payer_id": payer_id or (payer.id if payer else None) or None,
        "user_id": (payer.user_id if payer else None) or None,
        "organization_id": (payer.organization_id if payer else None) or None,
    }


def version(updated_at_ms: int | None, options: RowOptions) -> datetime:
    """An object's updated_at, or when a reconcile listing read it (its payload has none)."""
    found = from_ms(updated_at_ms) or options.listed_at
    if found is None:
        raise PayloadError("billing payload does not fit: updated_at: missing")
    return found
