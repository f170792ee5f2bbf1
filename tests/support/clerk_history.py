"""Generated Clerk histories for convergence tests: what Clerk did (in order), the webhook
events it sent, and the state its Backend API lists at the end: users, organizations,
memberships, invitations, permissions, roles (with their grants) and waitlist entries; and the
webhook-only kinds Clerk lists nowhere instance-wide: sessions, billing subscriptions (carrying
their items and those items' plans; items and plans are listed) and payment attempts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from tests.support import clerk_payloads as cp

USERS = ("user_a", "user_b", "user_c")
ORGS = ("org_x", "org_y")
PERMISSIONS = ("perm_p", "perm_q")
ROLES = ("role_r", "role_s")
WAITLIST = ("wle_1", "wle_2")
SESSIONS = ("sess_1", "sess_2", "sess_3")
SUBSCRIPTIONS = ("csub_1", "csub_2")
PAYMENTS = ("pa_1", "pa_2")
PLANS = ("free", "pro")  # slugs; plans never change here (their payloads carry no time)
PAYER_ORG = "org_payer"  # billing is paid by an organization the history leaves alone


@dataclass
class History:
    events: list[dict[str, Any]] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # live, final snapshots
    orgs: dict[str, dict[str, Any]] = field(default_factory=dict)
    memberships: dict[str, dict[str, Any]] = field(default_factory=dict)
    invitations: dict[str, dict[str, Any]] = field(default_factory=dict)
    permissions: dict[str, dict[str, Any]] = field(default_factory=dict)
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    waitlist: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)  # webhook-only kinds:
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)  # every snapshot
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # is the newest, ended or not
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    ever: set[str] = field(default_factory=set)  # every id that ever existed


@st.composite
def histories(draw: st.DrawFn) -> History:
    h = History()
    now = cp.T0
    seq = 0

    def tick() -> int:
        nonlocal now
        # Sometimes 0: two snapshots of one object may share an updated_at (a tie).
        now += draw(st.sampled_from([0, 1, 7, 400, 1500]))
        return now

    def stamp(deleted: bool = False) -> int:
        # Deletions are sometimes stamped in seconds, as Clerk's published examples are.
        if deleted and draw(st.booleans()):
            return now // 1000  # read back as the end of the current second
        return now

    steps = draw(st.integers(min_value=3, max_value=28))
    for _ in range(steps):
        seq += 1
        action = draw(
            st.sampled_from(
                [
                    "user",
                    "user",
                    "org",
                    "member",
                    "member",
                    "member_end",
                    "invite",
                    "delete",
                    "permission",
                    "role",
                    "role",
                    "gone",
                    "waitlist",
                    "session",
                    "subscription",
                    "item",
                    "payment",
                ]
            )
        )
        if action == "user":
            uid = draw(st.sampled_from(USERS))
            if uid not in h.users and uid in h.ever:
                continue  # deleted users never come back
            tick()
            kind = "user.updated" if uid in h.users else "user.created"
            created = h.users[uid]["created_at"] if uid in h.users else now
            emails = [cp.email(f"idn_{uid}_{seq}", f"{uid}.{seq}@example.org")]
            if draw(st.booleans()) and uid in h.users:
                emails += h.users[uid]["email_addresses"][:1]
            snap = cp.user(
                uid, created_at=created, updated_at=now, emails=emails, first_name=f"n{seq}"
            )
            if kind == "user.updated" and h.users[uid]["updated_at"] == now:
                snap = h.users[uid]  # a tie carries the same state
            h.users[uid] = snap
            h.ever.add(uid)
            h.events.append(cp.envelope(kind, snap, now))
        elif action == "org":
            oid = draw(st.sampled_from(ORGS))
            if oid not in h.orgs and oid in h.ever:
                continue
            tick()
            kind = "organization.updated" if oid in h.orgs else "organization.created"
            created = h.orgs[oid]["created_at"] if oid in h.orgs else now
            snap = cp.organization(oid, created_at=created, updated_at=now, name=f"org {seq}")
            if oid in h.orgs and h.orgs[oid]["updated_at"] == now:
                snap = h.orgs[oid]  # a tie carries the same state
            h.orgs[oid] = snap
            h.ever.add(oid)
            h.events.append(cp.envelope(kind, snap, now))
        elif action == "member":
            uid, oid = draw(st.sampled_from(USERS)), draw(st.sampled_from(ORGS))
            if uid not in h.users or oid not in h.orgs:
                continue
            tick()
            current = next(
                (
                    m
                    for m in h.memberships.values()
                    if m["public_user_data"]["user_id"] == uid and m["organization"]["id"] == oid
                ),
                None,
            )
            role = draw(st.sampled_from(["org:member", "org:admin"]))
            if current is None:
                mid = f"orgmem_{seq:03d}"  # ids sort by creation, as Clerk's do
                snap = cp.membership(
                    mid, org_id=oid, user_id=uid, role=role, created_at=now, updated_at=now
                )
                kind = "organizationMembership.created"
            else:
                mid = current["id"]
                snap = cp.membership(
                    mid,
                    org_id=oid,
                    user_id=uid,
                    role=role,
                    created_at=current["created_at"],
                    updated_at=now,
                )
                if current["updated_at"] == now:
                    snap = current
                kind = "organizationMembership.updated"
            h.memberships[mid] = snap
            h.ever.add(mid)
            h.events.append(cp.envelope(kind, snap, now))
        elif action == "member_end":
            if not h.memberships:
                continue
            mid = draw(st.sampled_from(sorted(h.memberships)))
            tick()
            h.events.append(
                cp.envelope("organizationMembership.deleted", h.memberships.pop(mid), stamp(True))
            )
        elif action == "invite":
            oid = draw(st.sampled_from(ORGS))
            if oid not in h.orgs:
                continue
            tick()
            pending = [
                i
                for i in h.invitations.values()
                if i["organization_id"] == oid and i["status"] == "pending"
            ]
            settle_one = draw(st.booleans())
            if pending and settle_one:
                old = pending[0]
                status = draw(st.sampled_from(["accepted", "revoked"]))
                snap = cp.invitation(
                    old["id"],
                    org_id=oid,
                    status=status,
                    created_at=old["created_at"],
                    updated_at=now,
                )
                if old["updated_at"] == now:
                    snap, status = old, old["status"]
                kind = f"organizationInvitation.{'created' if status == 'pending' else status}"
            else:
                snap = cp.invitation(
                    f"orginv_{seq:03d}", org_id=oid, created_at=now, updated_at=now
                )
                kind = "organizationInvitation.created"
            h.invitations[snap["id"]] = snap
            h.events.append(cp.envelope(kind, snap, now))
        elif action in ("permission", "role", "waitlist"):
            _versioned_step(draw, h, action, tick(), seq)
        elif action == "session":
            _session_step(draw, h, tick(), seq)
        elif action in ("subscription", "item"):
            _billing_step(draw, h, action, tick(), seq)
        elif action == "payment":
            _payment_step(draw, h, tick())
        elif action == "gone":
            # A role or permission deleted (nothing hangs off either in the replica: a deleted
            # permission's grants go with its roles' next snapshots, as Clerk sends them).
            target = draw(st.sampled_from(sorted([*h.roles, *h.permissions]) or ["none"]))
            if target == "none":
                continue
            tick()
            name = "role" if target.startswith("role_") else "permission"
            (h.roles if name == "role" else h.permissions).pop(target)
            h.events.append(cp.envelope(f"{name}.deleted", cp.deleted(name, target), stamp(True)))
        elif action == "delete":
            target = draw(st.sampled_from(sorted([*h.users, *h.orgs]) or ["none"]))
            if target == "none":
                continue
            tick()
            is_user = target.startswith("user_")
            (h.users if is_user else h.orgs).pop(target)
            kind = "user.deleted" if is_user else "organization.deleted"
            h.events.append(
                cp.envelope(
                    kind, cp.deleted("user" if is_user else "organization", target), stamp(True)
                )
            )
            # Clerk removes what hangs off the deleted object; whether it sends an event for
            # each membership is unconfirmed, so sometimes it does and sometimes not.
            for mid, m in sorted(h.memberships.items()):
                owner = m["public_user_data"]["user_id"] if is_user else m["organization"]["id"]
                if owner == target:
                    del h.memberships[mid]
                    if draw(st.booleans()):
                        h.events.append(
                            cp.envelope("organizationMembership.deleted", m, stamp(True))
                        )
            if not is_user:
                h.invitations = {
                    i: v for i, v in h.invitations.items() if v["organization_id"] != target
                }
    return h


def _versioned_step(draw: st.DrawFn, h: History, action: str, now: int, seq: int) -> None:
    """Create or update a permission, a role (granting some live permissions) or a waitlist
    entry; deleted ones never come back (Clerk's ids are not reused)."""
    ids, held, prefix = {
        "permission": (PERMISSIONS, h.permissions, "permission"),
        "role": (ROLES, h.roles, "role"),
        "waitlist": (WAITLIST, h.waitlist, "waitlistEntry"),
    }[action]
    oid = draw(st.sampled_from(ids))
    if oid not in held and oid in h.ever:
        return
    created = held[oid]["created_at"] if oid in held else now
    if action == "permission":
        snap = cp.permission(oid, key=f"org:p{seq}", created_at=created, updated_at=now)
    elif action == "role":
        grants = [h.permissions[p] for p in sorted(h.permissions) if draw(st.booleans())]
        snap = cp.role(
            oid, key=f"org:r{seq}", permissions=grants, created_at=created, updated_at=now
        )
    else:
        status = draw(st.sampled_from(["pending", "invited", "rejected"]))
        snap = cp.waitlist_entry(oid, status=status, created_at=created, updated_at=now)
    if oid in held and held[oid]["updated_at"] == now:
        snap = held[oid]  # a tie carries the same state
    kind = "updated" if oid in held else "created"
    held[oid] = snap
    h.ever.add(oid)
    h.events.append(cp.envelope(f"{prefix}.{kind}", snap, now))


def _session_step(draw: st.DrawFn, h: History, now: int, seq: int) -> None:
    """A live user signs in (a new session), or a session ends, is removed or revoked."""
    sid = draw(st.sampled_from(SESSIONS))
    old = h.sessions.get(sid)
    if old is None:
        live = sorted(h.users)
        if sid in h.ever or not live:
            return
        snap = cp.session(sid, user_id=draw(st.sampled_from(live)), created_at=now, updated_at=now)
        kind = "session.created"
    else:
        if old["status"] != "active" or old["user_id"] not in h.users:
            return  # over, or its user is gone (Clerk purges those sessions)
        status = draw(st.sampled_from(["ended", "removed", "revoked"]))
        snap = cp.session(
            sid, user_id=old["user_id"], status=status, created_at=old["created_at"], updated_at=now
        )
        if old["updated_at"] == now:
            snap = old  # a tie carries the same state
        kind = f"session.{status}"
    h.sessions[sid] = snap
    h.ever.add(sid)
    h.events.append(cp.envelope(kind, snap, now))


def _item(h: History, iid: str, sid: str, plan: str, status: str, now: int) -> dict[str, Any]:
    old = h.items.get(iid)
    if old is not None and old["updated_at"] == now:
        return old  # a tie carries the same state
    return cp.subscription_item(
        iid,
        subscription_id=sid,
        plan_slug=plan,
        status=status,
        organization_id=PAYER_ORG,
        created_at=old["created_at"] if old else now,
        updated_at=now,
    )


def _billing_step(draw: st.DrawFn, h: History, action: str, now: int, seq: int) -> None:
    """A subscription starts, changes plan (its old item ends, a new one starts) or status, and
    is sent with all its items; or one item changes alone (`subscriptionItem.*`)."""
    if action == "item":
        if not h.items:
            return
        iid = draw(st.sampled_from(sorted(h.items)))
        item = h.items[iid]
        event, status = draw(
            st.sampled_from(
                [
                    ("active", "active"),
                    ("canceled", "canceled"),
                    ("ended", "ended"),
                    ("pastDue", "past_due"),
                ]
            )
        )
        h.items[iid] = _item(h, iid, item["subscription_id"], item["plan"]["slug"], status, now)
        h.events.append(cp.envelope(f"subscriptionItem.{event}", h.items[iid], now))
        return
    sid = draw(st.sampled_from(SUBSCRIPTIONS))
    old = h.subscriptions.get(sid)
    plan = draw(st.sampled_from(PLANS))
    if old is None:
        new = _item(h, f"csitem_{seq:03d}", sid, plan, "active", now)
        h.items[new["id"]] = new
        status, kind, created = "active", "subscription.created", now
    else:
        status = draw(st.sampled_from(["active", "past_due"]))
        kind = "subscription.active" if status == "active" else "subscription.pastDue"
        created = old["created_at"]
        current = [i for i in h.items.values() if i["subscription_id"] == sid]
        if draw(st.booleans()) and old["updated_at"] != now:  # a plan change
            for item in current:
                h.items[item["id"]] = _item(h, item["id"], sid, item["plan"]["slug"], "ended", now)
            new = _item(h, f"csitem_{seq:03d}", sid, plan, "active", now)
            h.items[new["id"]] = new
    items = [i for _, i in sorted(h.items.items()) if i["subscription_id"] == sid]
    snap = cp.subscription(
        sid,
        items=items,
        organization_id=PAYER_ORG,
        status=status,
        created_at=created,
        updated_at=now,
    )
    if old is not None and old["updated_at"] == now:
        snap = old
    h.subscriptions[sid] = snap
    h.events.append(cp.envelope(kind, snap, now))


def _payment_step(draw: st.DrawFn, h: History, now: int) -> None:
    """A payment attempt starts pending, then is paid or fails."""
    pid = draw(st.sampled_from(PAYMENTS))
    old = h.payments.get(pid)
    if old is not None and old["status"] != "pending":
        return
    status = "pending" if old is None else draw(st.sampled_from(["paid", "failed"]))
    snap = cp.payment_attempt(
        pid,
        user_id="",
        organization_id=PAYER_ORG,
        status=status,
        created_at=old["created_at"] if old else now,
        updated_at=now,
    )
    if old is not None and old["updated_at"] == now:
        snap = old
    h.payments[pid] = snap
    kind = "paymentAttempt.created" if old is None else "paymentAttempt.updated"
    h.events.append(cp.envelope(kind, snap, now))


@st.composite
def deliveries(draw: st.DrawFn, history: History) -> tuple[list[dict[str, Any]], int]:
    """Any permutation, with duplicates, and some events dropped (reconcile must recover them).
    Returns the deliveries and how many distinct events were dropped."""
    events = list(history.events)
    if draw(st.booleans()):  # half the examples lose some events (~25% of them)
        kept = [e for e in events if not draw(st.booleans()) or draw(st.booleans())]
    else:
        kept = events
    dupes = draw(st.lists(st.sampled_from(kept), max_size=5)) if kept else []
    order = draw(st.permutations(kept + dupes))
    return list(order), len(events) - len(kept)
