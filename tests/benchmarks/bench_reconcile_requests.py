"""Backend API requests of reconcile runs, exact on a noisy machine: a full run, an incremental
run of an unchanged instance, one after 0.1% drift no webhook reported (a third of 0.1% of the
users updated, created, deleted; 0.1% of the memberships created or deleted; 0.1% of the
organizations renamed), one after as much again with nothing deleted; each as a share of full.

Sizes as in the latency benchmark (pages of 500, one request in flight). Measured (up to
BENCH_REQUESTS_MEASURED_MAX users): the real reconcile against the fake Backend API into SQLite,
replica checked equal to the fake. Computed (every size): the same request rules, the users'
bisection by service.reconcile.incremental itself; where both exist they must agree exactly.
How the figures arise: docs/explanation/reconcile-modes.md. Recorded with measure.record().
"""

from __future__ import annotations

import asyncio
import bisect
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

PAGE = 500
OVERLAP = 5  # service.reconcile.incremental.OVERLAP
KINDS = ("organizations", "users", "memberships")
SIZES = [(50_000, 5_000, 50_000), (1_000_000, 100_000, 1_000_000)]
MEASURED_MAX = int(os.environ.get("BENCH_REQUESTS_MEASURED_MAX", "50000"))
SEED = 32
DRIFT = (
    "0.1% of the users (a third updated, a third created, a third deleted, each deleted "
    "user's memberships gone with it), 0.1% of the memberships (half created, half deleted), "
    "0.1% of the organizations renamed; all at random, none reported by a webhook"
)


CHANGES = (
    "after the drift run, as much drift again with nothing deleted: 0.05% of the users "
    "updated, 0.05% created, 0.05% of the memberships created, 0.1% of the organizations "
    "renamed"
)


@dataclass
class Drift:
    updated: list[int]  # user indices
    created: int
    deleted: list[int]  # user indices
    members_added: list[tuple[int, int]]  # (organization index, user index)
    members_deleted: list[int]  # membership indices
    renamed: list[int]  # organization indices


def drift_for(users: int, orgs: int, memberships: int) -> Drift:
    rng = random.Random(SEED)
    n = max(3, users // 1000)
    third = n // 3
    picked = rng.sample(range(users), 2 * third)
    gone = set(picked[third:])
    m = max(2, memberships // 1000)
    kept = [u for u in rng.sample(range(users), 2 * m) if u not in gone]
    return Drift(
        updated=picked[:third],
        created=n - 2 * third,
        deleted=picked[third:],
        members_added=[(rng.randrange(orgs), kept[k]) for k in range(m - m // 2)],
        members_deleted=rng.sample(range(memberships), m // 2),
        renamed=rng.sample(range(orgs), max(1, orgs // 1000)),
    )


def changes_for(users: int, orgs: int, memberships: int) -> Drift:
    """After `drift_for`'s run: as much drift again, but nothing deleted (what webhooks miss
    most: updates and creations)."""
    rng = random.Random(SEED + 1)
    gone = set(drift_for(users, orgs, memberships).deleted)
    n, m = max(3, users // 1000), max(2, memberships // 1000)
    kept = [u for u in rng.sample(range(users), 2 * (n + m)) if u not in gone]
    return Drift(
        updated=kept[: n // 2],
        created=n - n // 2,
        deleted=[],
        members_added=[(rng.randrange(orgs), kept[n + k]) for k in range(m // 2)],
        members_deleted=[],
        renamed=rng.sample(range(orgs), max(1, orgs // 1000)),
    )


def org_of(index: int, orgs: int) -> int:
    return index % orgs


def user_of(index: int, users: int, orgs: int) -> int:
    """tests.support.clerk_instances.synthetic_instance's layout of memberships."""
    org, nth = index % orgs, index // orgs
    return (org + nth * 7919) % users


# -- computed ----------------------------------------------------------------------------------


def pages(n: int) -> int:
    """Requests to walk a list of n to its end: a short (or empty) page ends it."""
    return n // PAGE + 1


def newest_pages(recent: int, total: int, overlap: int) -> int:
    """Requests of a newest-first walk that stops at the first page not wholly recent."""
    offset, requests = 0, 0
    while True:
        requests += 1
        got = max(0, min(PAGE, total - offset))
        if got < PAGE or offset + got > recent:
            return requests
        offset += got - overlap


async def computed(users: int, orgs: int, memberships: int) -> dict[str, int]:
    from service.reconcile.incremental import differing_ranges

    drift = drift_for(users, orgs, memberships)
    full = 1 + sum(1 + pages(n) for n in (orgs, users, memberships))
    unchanged = 1 + (1 + pages(orgs)) + (1 + 1) + 1

    # Users: created_at T0 + index; the created ones just before the run's start.
    t0, cutoff = 1_000_000, 10_000_000
    created = [cutoff - 1000 - i for i in range(drift.created)]
    gone = set(drift.deleted)
    replica = sorted([t0 + i for i in range(users)] + created)  # after the changed list
    clerk = sorted([t0 + i for i in range(users) if i not in gone] + created)
    counted = 0

    def counter(values: list[int], charged: bool) -> Any:
        async def count(low: int | None, high: int) -> int:
            nonlocal counted
            counted += charged
            start = 0 if low is None else bisect.bisect_left(values, low)
            return bisect.bisect_left(values, high) - start

        return count

    async def median(low: int | None, high: int, count: int) -> int | None:
        start = 0 if low is None else bisect.bisect_left(replica, low)
        mid = replica[start + count // 2]
        return mid if (low is None or mid > low) and mid < high else None

    ranges = await differing_ranges(
        counter(clerk, True), counter(replica, False), median, cutoff, PAGE, 0.05
    )
    listing = missing = 0
    for low, high in ranges:
        start = 0 if low is None else bisect.bisect_left(clerk, low)
        listing += pages(bisect.bisect_left(clerk, high) - start)
        missing += sum(1 for i in gone if (low is None or t0 + i >= low) and t0 + i < high)
    lookups = -(-missing // 100)  # confirmed a hundred at a time (GET /users?user_id=...)
    recent = len(drift.updated) + drift.created
    users_requests = newest_pages(recent, users - len(gone) + drift.created, OVERLAP)
    users_requests += counted + listing + lookups

    # Memberships: the newest created first, then each organization whose count differs
    # (deleted users' memberships ended with them on both sides) or that was renamed.
    # A membership deleted with its user ended with the user in the replica too.
    deleted_members = {i for i in drift.members_deleted if user_of(i, users, orgs) not in gone}
    chosen = {org_of(i, orgs) for i in deleted_members} | set(drift.renamed)
    with_gone = sum(1 for i in range(memberships) if user_of(i, users, orgs) in gone)
    live = memberships - with_gone + len(drift.members_added)  # the replica's, before ends
    per_org = [0] * orgs  # Clerk's
    members_deleted = set(drift.members_deleted)
    for i in range(memberships):
        if i not in members_deleted and user_of(i, users, orgs) not in gone:
            per_org[org_of(i, orgs)] += 1
    for org, _user in drift.members_added:
        per_org[org] += 1
    added = len(drift.members_added)
    members_requests = newest_pages(added, sum(per_org), 0)
    if len(chosen) > -(-live // PAGE) + 1:
        members_requests += 1 + pages(sum(per_org)) + len(deleted_members)
    else:
        # An organization's list in one answer confirms what it lacks; a longer one, a lookup.
        looked_up = sum(1 for i in deleted_members if per_org[org_of(i, orgs)] >= PAGE)
        members_requests += sum(pages(per_org[o]) for o in chosen) + looked_up
    drifted = 1 + (1 + pages(orgs)) + users_requests + members_requests

    # Then as much again with nothing deleted: counts agree, nothing is split or listed.
    more = changes_for(users, orgs, memberships)
    clerk_users = users - len(gone) + drift.created
    users_requests = newest_pages(len(more.updated) + more.created, clerk_users + more.created, 5)
    for org, _user in more.members_added:
        per_org[org] += 1
    members_requests = newest_pages(len(more.members_added), sum(per_org), 0)
    members_requests += sum(pages(per_org[o]) for o in set(more.renamed))
    changed = 1 + (1 + pages(orgs)) + users_requests + 1 + members_requests
    return {"full": full, "unchanged": unchanged, "drift": drifted, "changes": changed}


# -- measured ----------------------------------------------------------------------------------


def fake_instance(users: int, orgs: int, memberships: int) -> Any:
    from tests.support import clerk_payloads as cp
    from tests.support.fake_clerk import FakeClerk

    fake = FakeClerk()
    fake.users = [
        cp.user(
            f"user_{i:09d}",
            created_at=cp.T0 + i,
            updated_at=cp.T0 + i,
            emails=[cp.email(f"idn_{i:09d}", f"u{i}@example.org")],
        )
        for i in range(users)
    ]
    fake.organizations = [
        cp.organization(f"org_{j:09d}", created_at=cp.T0 + j, updated_at=cp.T0 + j, slug=f"o{j}")
        for j in range(orgs)
    ]
    fake.memberships = [
        cp.membership(
            f"orgmem_{i:09d}",
            org_id=f"org_{org_of(i, orgs):09d}",
            user_id=f"user_{user_of(i, users, orgs):09d}",
            created_at=cp.T0 + i,
            updated_at=cp.T0 + i,
        )
        for i in range(memberships)
    ]
    return fake


def apply_drift(fake: Any, drift: Drift, prefix: str) -> None:
    from tests.support import clerk_payloads as cp

    now = int(time.time() * 1000)
    for i in drift.updated:
        at = next(k for k, u in enumerate(fake.users) if u["id"] == f"user_{i:09d}")
        fake.users[at] = {**fake.users[at], "first_name": "Drifted", "updated_at": now}
    gone = {f"user_{i:09d}" for i in drift.deleted}
    dropped = {f"orgmem_{i:09d}" for i in drift.members_deleted}
    fake.users = [u for u in fake.users if u["id"] not in gone]
    fake.memberships = [
        m
        for m in fake.memberships
        if m["id"] not in dropped and m["public_user_data"]["user_id"] not in gone
    ]
    for n in range(drift.created):
        at = now - n
        fake.users.append(
            cp.user(
                f"user_new{prefix}{n:05d}",
                created_at=at,
                updated_at=at,
                emails=[cp.email(f"idn_new{prefix}{n:05d}", f"new{prefix}{n}@example.org")],
            )
        )
    for n, (org, user) in enumerate(drift.members_added):
        fake.memberships.append(
            cp.membership(
                f"orgmem_new{prefix}{n:05d}",
                org_id=f"org_{org:09d}",
                user_id=f"user_{user:09d}",
                created_at=now - n,
                updated_at=now - n,
            )
        )
    for j in drift.renamed:
        fake.organizations[j] = {**fake.organizations[j], "name": "Renamed", "updated_at": now}


async def measured(users: int, orgs: int, memberships: int) -> dict[str, int]:
    from sqlalchemy import select

    from service.db.engine import create_engine
    from service.operate.migrate import upgrade
    from service.reconcile.clerk_api import ClerkAPI
    from service.reconcile.modes import ReconcileOptions
    from service.reconcile.run import reconcile
    from tests.support.fake_clerk import KEY, serve
    from tests.support.settings import make_settings

    fake = fake_instance(users, orgs, memberships)
    figures: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp, serve(fake) as url:
        db = f"sqlite:///{tmp}/replica.db"
        await asyncio.to_thread(upgrade, db)
        settings = make_settings(
            db,
            "redis://127.0.0.1:1/0",
            clerk_secret_key=KEY,
            clerk_api_url=url,
            reconcile_page_size=PAGE,
            reconcile_concurrency=1,
            reconcile_max_requests_per_10s=1_000_000,
            # Changes are made just before each run: the margin would only blur which run
            # lists them (a few more requests at most), and these figures are to be exact.
            reconcile_since_margin_seconds=0,
        )
        engine = create_engine(settings)
        try:
            runs = ("full", "unchanged", "drift", "changes")
            for name in runs:
                full = name == "full"
                if name == "drift":
                    apply_drift(fake, drift_for(users, orgs, memberships), "a")
                if name == "changes":
                    apply_drift(fake, changes_for(users, orgs, memberships), "b")
                api = ClerkAPI(settings)
                try:
                    options = ReconcileOptions(kinds=KINDS, full=full)
                    report = await reconcile(engine, api, settings, options)
                finally:
                    await api.close()
                assert report.ok, report.summary()
                assert report.mode == ("full" if full else "incremental"), report.mode_reason
                figures[name] = api.stats.requests
                per_kind = {p.kind: p.requests for p in report.passes}
                print(f"  measured {name}: {api.stats.requests} {per_kind}", file=sys.stderr)
            from tests.support import tables as t

            for table, objects in (
                (t.users, fake.users),
                (t.organizations, fake.organizations),
                (t.organization_memberships, fake.memberships),
            ):
                live = select(table.c.id).where(table.c.deleted_at.is_(None))
                async with engine.connect() as conn:
                    found = await conn.execute(live)
                    ids, want = {r.id for r in found}, {o["id"] for o in objects}
                    assert ids == want, (table.name, sorted(ids - want)[:5], sorted(want - ids)[:5])
        finally:
            await engine.dispose()
    return figures


def drift_floor(users: int, orgs: int, memberships: int, unchanged: int) -> int:
    """Fewest requests any run could spend on the drift, even told where every deletion is:
    an unchanged run's, one listing per organization that changed or lost a member (its
    count names the organization, not the member), and one request per window of 500 live
    users, of the fewest holding every deleted user (a page lists at most 500; a count pins
    only users gone with no live one between them: for scattered deletions, one)."""
    drift = drift_for(users, orgs, memberships)
    gone = set(drift.deleted)
    lost = {org_of(i, orgs) for i in drift.members_deleted if user_of(i, users, orgs) not in gone}
    windows, end = 0, -1
    for index in sorted(gone):
        if index > end:  # a window from here to its 500th live user
            windows, end = windows + 1, index + PAGE - 1
            while end - index + 1 - sum(1 for g in gone if index <= g <= end) < PAGE:
                end += 1
    listed = min(len(lost | set(drift.renamed)), pages(memberships))
    return unchanged + listed + windows


async def sizes() -> list[dict[str, Any]]:
    results = []
    for users, orgs, memberships in SIZES:
        row: dict[str, Any] = {"users": users, "organizations": orgs, "memberships": memberships}
        row["computed"] = await computed(users, orgs, memberships)
        if users <= MEASURED_MAX:
            row["measured"] = await measured(users, orgs, memberships)
            if row["measured"] != row["computed"]:
                raise SystemExit(f"measured {row['measured']} != computed {row['computed']}")
        figures = row["computed"]
        row["drift_floor"] = drift_floor(users, orgs, memberships, figures["unchanged"])
        row["unchanged_share_of_full"] = round(figures["unchanged"] / figures["full"], 4)
        row["drift_share_of_full"] = round(figures["drift"] / figures["full"], 4)
        row["changes_share_of_full"] = round(figures["changes"] / figures["full"], 4)
        row["targets_met"] = {
            "unchanged_at_most_a_tenth": figures["unchanged"] * 10 <= figures["full"],
            "drift_at_most_a_quarter": figures["drift"] * 4 <= figures["full"],
            "changes_at_most_a_quarter": figures["changes"] * 4 <= figures["full"],
        }
        print(json.dumps(row), file=sys.stderr)
        results.append(row)
    return results


TARGETS = {"unchanged": ("at most 1/10", 10), "drift": ("at most 1/4", 4)}
RUNS = {
    "full": "full",
    "unchanged": "unchanged",
    "drift": "0.1% drift",
    "changes": "0.1% changes, no deletions",
}


def rows(results: list[dict[str, Any]]) -> list[list[str]]:
    """One row per size and run: requests, share of the full run, target and whether met."""
    out = []
    for row in results:
        figures, how = row["computed"], "measured = computed" if "measured" in row else "computed"
        for run, label in RUNS.items():
            target, divisor = TARGETS.get(run, ("", 0))
            met = (
                ""
                if not divisor
                else ("met" if figures[run] * divisor <= figures["full"] else "NOT met")
            )
            out.append(
                [
                    f"{row['users']:,} / {row['organizations']:,} / {row['memberships']:,}",
                    label,
                    f"{figures[run]:,}",
                    f"{figures[run] / figures['full']:.1%}",
                    target,
                    met,
                    how,
                ]
            )
        floor = row["drift_floor"]
        out.append(
            [
                f"{row['users']:,} / {row['organizations']:,} / {row['memberships']:,}",
                "0.1% drift: floor, deletions located for free",
                f"{floor:,}",
                f"{floor / figures['full']:.1%}",
                "at most 1/4",
                "met" if floor * 4 <= figures["full"] else "NOT met",
                "computed lower bound",
            ]
        )
    return out


def main() -> None:
    from tests.benchmarks.measure import record

    results = asyncio.run(sizes())
    header = ("users / orgs / memberships", "run", "requests", "of full", "target", "met", "how")
    title = "Backend API requests per reconcile run (GET /instance included)"
    path = record("bench_reconcile_requests", title, header, rows(results))
    # The per-size detail (docs_gen reads only the table's keys; the rest is for readers).
    document = json.loads(path.read_text())
    document.update(drift=DRIFT, changes=CHANGES, seed=SEED, page_size=PAGE, sizes=results)
    path.write_text(json.dumps(document, indent=1) + "\n")
    print(json.dumps(document, indent=1))


if __name__ == "__main__":
    main()
