"""Pre-signed Clerk deliveries for the load generators, written to files before a run.

Signing happens here, not in the load generator, so the generator's only work is sending bytes.
Each delivery gets a unique svix-id and the generation time as its svix-timestamp (Svix accepts
five minutes either way), so files are made just before the run that sends them.

File format, one delivery per line: svix-id TAB svix-timestamp TAB svix-signature TAB body.
json.dumps escapes tabs and newlines inside strings, so the body never contains either.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from svix.webhooks import Webhook

from tests.support import clerk_payloads as cp
from tests.support.signing import SECRET

WEBHOOK_PATH = "/webhooks/clerk"


@dataclass(frozen=True)
class Delivery:
    svix_id: str
    timestamp: str
    signature: str
    body: str

    def line(self) -> str:
        return f"{self.svix_id}\t{self.timestamp}\t{self.signature}\t{self.body}\n"

    @classmethod
    def parse(cls, line: str) -> Delivery:
        svix_id, timestamp, signature, body = line.rstrip("\n").split("\t", 3)
        return cls(svix_id, timestamp, signature, body)

    def http_request(self, host: str) -> bytes:
        """The whole HTTP/1.1 request (keep-alive), ready to write to a socket."""
        body = self.body.encode()
        head = (
            f"POST {WEBHOOK_PATH} HTTP/1.1\r\n"
            f"host: {host}\r\n"
            f"svix-id: {self.svix_id}\r\n"
            f"svix-timestamp: {self.timestamp}\r\n"
            f"svix-signature: {self.signature}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body


def mixed_event(i: int, users: int = 2000, orgs: int = 100) -> dict[str, Any]:
    """The apply benchmark's mix: 60% user.updated with two emails, 10% organization.updated,
    30% organizationMembership.created; objects repeat, so updates contend as in production."""
    kind = i % 10
    updated = cp.T0 + i
    if kind < 6:
        user = cp.user(
            f"user_{i % users:05d}",
            updated_at=updated,
            emails=[
                cp.email(f"idn_{i}", f"u{i}@example.org"),
                cp.email(f"idn_b{i}", f"b{i}@example.org"),
            ],
        )
        return cp.envelope("user.updated", user)
    if kind == 6:
        org = cp.organization(f"org_{i % orgs:03d}", updated_at=updated)
        return cp.envelope("organization.updated", org)
    member = cp.membership(
        f"orgmem_{i}",
        org_id=f"org_{i % orgs:03d}",
        user_id=f"user_{i % users:05d}",
        created_at=updated,
        updated_at=updated,
    )
    return cp.envelope("organizationMembership.created", member)


def deliveries(count: int, *, first: int = 0, secret: str = SECRET) -> Iterator[Delivery]:
    """`count` mixed events, each signed now under a fresh svix-id."""
    webhook = Webhook(secret)
    at = datetime.now(UTC)
    timestamp = str(int(at.timestamp()))
    run = uuid4().hex[:12]
    for i in range(first, first + count):
        body = json.dumps(mixed_event(i), separators=(",", ":"))
        svix_id = f"msg_bench_{run}_{i:08d}"
        yield Delivery(svix_id, timestamp, webhook.sign(svix_id, at, body), body)


def write(path: Path, items: Iterator[Delivery] | list[Delivery]) -> list[str]:
    """Write deliveries to `path`; returns their svix-ids in order."""
    ids: list[str] = []
    with path.open("w") as out:
        for item in items:
            out.write(item.line())
            ids.append(item.svix_id)
    return ids


def write_slices(prefix: Path, items: list[Delivery], slices: int) -> list[Path]:
    """Round-robin `items` into `slices` files (one per wrk thread): prefix.0, prefix.1, ..."""
    paths = [prefix.with_name(f"{prefix.name}.{n}") for n in range(slices)]
    for n, path in enumerate(paths):
        write(path, items[n::slices])
    return paths


def read(path: Path) -> list[Delivery]:
    with path.open() as lines:
        return [Delivery.parse(line) for line in lines]
