"""What a reconcile run is asked to do."""

from __future__ import annotations

from dataclasses import dataclass, field

from service.kinds.registry import KINDS


def listed_kinds() -> tuple[str, ...]:
    """The kinds reconcile can walk (those Clerk lists instance-wide), parents first."""
    return tuple(k.name for k in KINDS if k.listing is not None)


@dataclass(frozen=True)
class ReconcileOptions:
    resources: tuple[str, ...] = field(default_factory=listed_kinds)
    dry_run: bool = False
    force: bool = False  # tombstone beyond the safety share
    confirm_deletions: bool = True
    restart: bool = False  # ignore an unfinished run instead of resuming it
    trigger: str = "cli"
    full: bool = False  # list everything, whatever the mode would be
