"""Which Clerk instance (`ins_...`) each configured name (endpoint) stands for: one id per name,
one name per id. Bound by configuration (CLERK_<NAME>_INSTANCE_ID, never stored: it wins), by
reconcile's GET /instance (its key says so), or by the first delivery to the endpoint (trust on
first use, displaced by what a key or the configuration says). An event belongs to its
endpoint's instance; an envelope naming another is refused (docs/explanation/instances.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Column, Index, String, Table, Text, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.config import ConfigError
from service.db.dialect import dialect_of
from service.db.types import UTCDateTime, metadata


class BoundBy(StrEnum):
    RECONCILE = "reconcile"  # GET /instance with the name's secret key
    DELIVERY = "delivery"  # the first delivery the endpoint took


instances = Table(
    "clerk_replica_instances",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("instance_id", Text, nullable=False),
    Column("environment_type", Text),
    Column("identified_at", UTCDateTime, nullable=False),
    Column("bound_by", String(16)),  # BoundBy; NULL: recorded before bindings (a reconcile)
    Index("uq_clerk_replica_instances_instance_id", "instance_id", unique=True),
)

# The key writers binding a name lock first (PostgreSQL), so two cannot bind one id twice.
_LOCK_KEY = ":instances"


async def _lock(conn: AsyncConnection) -> None:
    """Take the binding lock for the rest of the transaction (a single writer needs none)."""
    dialect = dialect_of(conn)
    if dialect.concurrent_writers:
        await dialect.lock_keys(conn, [_LOCK_KEY])


class InstanceConflict(ConfigError):
    """A binding that would give one name two instances, or one instance two names."""


@dataclass(frozen=True)
class Bindings:
    """name -> instance id (configured ones win over stored ones), and back."""

    by_name: Mapping[str, str]
    by_id: Mapping[str, str]

    def refusal(self, name: str, instance_id: str | None) -> str | None:
        """Why an event of endpoint `name` whose envelope names `instance_id` is refused, or
        None (its instance is then `instance_for(name, instance_id)`)."""
        bound = self.by_name.get(name)
        if bound is not None:
            if instance_id is not None and instance_id != bound:
                return (
                    f"refused: the envelope names Clerk instance {instance_id}, but endpoint "
                    f"{name!r} is bound to {bound}; nothing was applied"
                )
            return None
        owner = self.by_id.get(instance_id) if instance_id is not None else None
        if owner is not None and owner != name:
            return (
                f"refused: the envelope names Clerk instance {instance_id}, which belongs to "
                f"endpoint {owner!r}, not {name!r}; nothing was applied"
            )
        return None

    def instance_for(self, name: str, instance_id: str | None) -> str | None:
        return self.by_name.get(name, instance_id)

    def learn(self, name: str, instance_id: str) -> Bindings:
        return Bindings({**self.by_name, name: instance_id}, {**self.by_id, instance_id: name})


async def bindings(
    conn: AsyncConnection, configured: Mapping[str, str], *, locked: bool = False
) -> Bindings:
    """The bindings in force: `configured` (name -> id) over the stored ones. `locked`: take
    the binding lock first (before learning from deliveries)."""
    if locked:
        await _lock(conn)
    stored = await conn.execute(select(instances.c.name, instances.c.instance_id))
    by_name = {
        name: instance_id
        for name, instance_id in stored
        if name not in configured and instance_id not in configured.values()
    }
    by_name.update(configured)
    return Bindings(by_name, {i: n for n, i in by_name.items()})


async def bind_deliveries(conn: AsyncConnection, learned: Mapping[str, str]) -> None:
    """Record names bound by their first delivery (the caller holds the binding lock)."""
    if not learned:
        return
    rows = [
        {
            "name": name,
            "instance_id": instance_id,
            "identified_at": datetime.now(UTC),
            "bound_by": BoundBy.DELIVERY.value,
        }
        for name, instance_id in sorted(learned.items())
    ]
    await conn.execute(dialect_of(conn).insert(instances).on_conflict_do_nothing(), rows)


async def bind_by_key(
    conn: AsyncConnection,
    name: str,
    instance_id: str,
    environment_type: str | None,
    configured: Mapping[str, str],
) -> str | None:
    """Record what reconcile's key says `name` is; the id it was bound to before (None: none
    or the same). A delivery-learned binding of the id to another name gives way; a binding
    by another key, or a configured id that differs, raises InstanceConflict."""
    await _lock(conn)
    wanted = configured.get(name)
    if wanted is not None and wanted != instance_id:
        raise InstanceConflict(
            f"the secret key of instance {name!r} belongs to Clerk instance {instance_id}, "
            f"but its INSTANCE_ID setting says {wanted}"
        )
    other = next((n for n, i in configured.items() if i == instance_id and n != name), None)
    if other is not None:
        raise InstanceConflict(
            f"Clerk instance {instance_id} (the key of {name!r}) is configured for {other!r}"
        )
    found = {
        r.name: r
        for r in await conn.execute(
            select(instances.c.name, instances.c.instance_id, instances.c.bound_by).where(
                (instances.c.name == name) | (instances.c.instance_id == instance_id)
            )
        )
    }
    for held in found.values():
        if held.name != name and held.bound_by != BoundBy.DELIVERY.value:
            raise InstanceConflict(
                f"Clerk instance {instance_id} (the key of {name!r}) is already bound to "
                f"{held.name!r}: one Clerk instance belongs to one name"
            )
    displaced = [n for n in found if n != name]
    if displaced:
        await conn.execute(delete(instances).where(instances.c.name.in_(displaced)))
    values = {
        "name": name,
        "instance_id": instance_id,
        "environment_type": environment_type,
        "identified_at": datetime.now(UTC),
        "bound_by": BoundBy.RECONCILE.value,
    }
    stmt = dialect_of(conn).insert(instances).values(values)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[instances.c.name],
            set_={k: v for k, v in values.items() if k != "name"},
        )
    )
    before = found.get(name)
    return before.instance_id if before is not None and before.instance_id != instance_id else None
