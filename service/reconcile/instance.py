"""Which Clerk instance a reconcile run lists: GET /instance with the run's key, recorded by the
configured name. Reconcile writes rows of that instance, and deletion detection considers only
rows of it, so instances sharing one replica never touch each other's rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.dialect import dialect_of
from service.logs import get_logger
from service.reconcile.clerk_api import ClerkAPI, ClerkRequestError
from service.reconcile.tables import instances

log = get_logger(__name__)


@dataclass(frozen=True)
class Identity:
    """A configured instance (`name`) and what Clerk says it is."""

    name: str
    instance_id: str
    environment_type: str | None


async def identify(api: ClerkAPI, name: str) -> Identity:
    """Ask Clerk which instance the key belongs to; ClerkRequestError if the answer says none."""
    found = await api.get("instance")
    instance_id = found.get("id") if isinstance(found, dict) else None
    if not isinstance(instance_id, str) or not instance_id:
        raise ClerkRequestError("GET /instance: the answer names no instance id", 200)
    environment = found.get("environment_type")
    return Identity(name, instance_id, environment if isinstance(environment, str) else None)


async def record(conn: AsyncConnection, identity: Identity) -> None:
    """Remember what the name stands for (the latest finding wins: a key may be replaced by
    another instance's, and then that instance's rows are the ones reconciled)."""
    before = await conn.scalar(
        select(instances.c.instance_id).where(instances.c.name == identity.name)
    )
    if before is not None and before != identity.instance_id:
        log.warning(
            "reconcile.instance_changed",
            instance=identity.name,
            was=before,
            now=identity.instance_id,
            hint="the secret key now belongs to another Clerk instance",
        )
    values = {
        "name": identity.name,
        "instance_id": identity.instance_id,
        "environment_type": identity.environment_type,
        "identified_at": datetime.now(UTC),
    }
    stmt = dialect_of(conn).insert(instances).values(values)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[instances.c.name],
            set_={k: v for k, v in values.items() if k != "name"},
        )
    )
