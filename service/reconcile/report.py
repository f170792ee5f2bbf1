"""What a reconcile run reports: counts per kind, and whether every kind completed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from service.config import DEFAULT_INSTANCE

# The counts a resumed pass restores from its checkpoint.
RESTORED_COUNTS = (
    "listed",
    "created",
    "updated",
    "unchanged",
    "tombstoned",
    "invalid",
    "requests",
    "throttled",
    "seconds",
)


@dataclass
class PassReport:
    kind: str
    status: str = "pending"  # completed | failed | refused
    mode: str = "full"  # full | incremental: how this kind was listed
    listed: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    tombstoned: int = 0
    # Not listed, but not looked up either (a column the lookup needs is NULL): kept live,
    # as reconcile never deletes what it cannot confirm is gone.
    unconfirmed: int = 0
    invalid: int = 0
    requests: int = 0
    throttled: int = 0
    in_flight: int = 0  # the most requests this pass had in flight at once
    seconds: float = 0.0
    error: str | None = None

    def counts(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunReport:
    run_id: int | None
    dry_run: bool
    resumed: bool = False
    passes: list[PassReport] = field(default_factory=list)
    instance: str = DEFAULT_INSTANCE  # the configured name of the instance listed
    mode: str = "full"  # full | incremental (service/reconcile/modes.py)
    mode_reason: str = ""

    @property
    def requests(self) -> int:
        return sum(p.requests for p in self.passes)

    @property
    def ok(self) -> bool:
        return bool(self.passes) and all(p.status == "completed" for p in self.passes)

    def summary(self) -> dict[str, Any]:
        return {p.kind: p.counts() for p in self.passes}


ProgressCallback = Callable[[PassReport, int | None], None]


def no_progress(_report: PassReport, _total: int | None) -> None:
    return None
