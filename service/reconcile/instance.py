"""Which Clerk instance a reconcile run lists: GET /instance with the run's key, recorded by the
configured name. Reconcile writes rows of that instance, and deletion detection considers only
rows of it, so instances sharing one replica never touch each other's rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from service.inbox.instances import bind_by_key
from service.logs import get_logger
from service.reconcile.clerk_api import ClerkAPI, ClerkRequestError

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


async def record(
    conn: AsyncConnection, identity: Identity, configured: Mapping[str, str] | None = None
) -> None:
    """Bind the name to what its key says it is (the latest finding wins: a key may be replaced
    by another instance's, and then that instance's rows are the ones reconciled). Raises
    InstanceConflict when the configured id (`configured`: name -> id) says otherwise, or the
    instance is another name's."""
    before = await bind_by_key(
        conn, identity.name, identity.instance_id, identity.environment_type, configured or {}
    )
    if before is not None:
        log.warning(
            "reconcile.instance_changed",
            instance=identity.name,
            was=before,
            now=identity.instance_id,
            hint="the secret key now belongs to another Clerk instance",
        )
