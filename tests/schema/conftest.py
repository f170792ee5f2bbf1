"""What the generated-schema tests share: the npm tools (installed from the committed lock by
scripts/node-tools, cached), and a replica the real service filled: signed deliveries through
the web app's ingest, applied by a real arq worker on real Redis.

The filled replica holds two users, two organizations and memberships between them, one whose
user never arrived (its `user` is missing) and one ended; `expected_memberships` says what a
reader following the relations must see, computed from the same payloads.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.config import Settings
from service.queue.worker import build_worker
from service.web.app import create_app
from tests.support import clerk_payloads as cp
from tests.support.settings import make_settings
from tests.support.signing import signed

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = Path(__file__).resolve().parent / "node"


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """tests/schema/node/node_modules, installed from package-lock.json (a no-op when it is)."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "node-tools")], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"scripts/node-tools failed:\n{done.stdout}\n{done.stderr}"
    return NODE_DIR / "node_modules"


def node_workdir(tmp_path: Path, node_modules: Path, files: dict[str, str]) -> Path:
    """A directory holding `files`, the tests' tsconfig.json and package.json, and the tools."""
    work = tmp_path / "ts"
    work.mkdir()
    (work / "node_modules").symlink_to(node_modules, target_is_directory=True)
    for name in ("tsconfig.json", "package.json"):
        (work / name).write_text((NODE_DIR / name).read_text())
    for name, text in files.items():
        (work / name).write_text(text)
    return work


def doc_example(page: str, language: str) -> str:
    """The code block after the `<!-- tested: ... -->` line of docs/how-to/<page>."""
    text = (ROOT / "docs" / "how-to" / page).read_text()
    found = re.search(r"<!-- tested: [^>]*-->\n```" + language + r"\n(.*?)^```", text, re.S | re.M)
    assert found is not None, f"docs/how-to/{page} has no tested {language} example"
    return found.group(1)


def run_tool(work: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run a node tool in `work`; its stdout, or the test fails with what it printed."""
    done = subprocess.run(
        list(args), cwd=work, capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@dataclass(frozen=True)
class People:
    users: list[dict[str, Any]]
    organizations: list[dict[str, Any]]
    memberships: list[dict[str, Any]]  # live ones
    ended: list[dict[str, Any]]


def people() -> People:
    jane = cp.user(
        "user_jane",
        first_name="Jane",
        emails=[cp.email("idn_jane_1", "jane@acme.example"), cp.email("idn_jane_2", "j@x.example")],
    )
    omar = cp.user("user_omar", first_name="Omar", created_at=cp.T0 + 1500)
    acme = cp.organization("org_acme", slug="acme")
    globex = cp.organization("org_globex", slug="globex", name="Globex")
    live = [
        cp.membership("orgmem_1", org_id="org_acme", user_id="user_jane", role="org:admin"),
        cp.membership("orgmem_2", org_id="org_acme", user_id="user_omar"),
        cp.membership("orgmem_3", org_id="org_globex", user_id="user_jane"),
        cp.membership("orgmem_4", org_id="org_globex", user_id="user_never_arrived"),
    ]
    ended = [cp.membership("orgmem_5", org_id="org_globex", user_id="user_omar")]
    return People([jane, omar], [acme, globex], live, ended)


def iso(ms: int) -> str:
    """A Clerk time as JavaScript's Date.toISOString() prints it."""
    at = datetime.fromtimestamp(ms / 1000, UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def expected_memberships(p: People) -> list[dict[str, Any]]:
    """Each live membership with its user (emails sorted) and organization, by id."""
    users = {u["id"]: u for u in p.users}
    orgs = {o["id"]: o for o in p.organizations}
    found = []
    for m in sorted(p.memberships, key=lambda m: m["id"]):
        user = users.get(m["public_user_data"]["user_id"])
        org = orgs[m["organization"]["id"]]
        found.append(
            {
                "id": m["id"],
                "role": m["role"],
                "permissions": m["permissions"],
                "user": None
                if user is None
                else {
                    "id": user["id"],
                    "firstName": user["first_name"],
                    "emails": sorted(e["email_address"] for e in user["email_addresses"]),
                    "createdAt": iso(user["created_at"]),
                },
                "organization": {"id": org["id"], "slug": org["slug"]},
            }
        )
    return found


async def fill_through_webhooks(database_url: str, redis_url: str) -> People:
    """Deliver `people()` as signed webhooks to the real app, then drain them with a worker."""
    p = people()
    settings = make_settings(database_url, redis_url)
    envelopes = [cp.envelope("organizationMembership.created", m) for m in p.memberships]
    envelopes += [cp.envelope("user.created", u) for u in p.users]
    envelopes += [cp.envelope("organization.created", o) for o in p.organizations]
    for m in p.ended:
        envelopes.append(cp.envelope("organizationMembership.created", m))
        envelopes.append(cp.envelope("organizationMembership.deleted", m, timestamp=cp.T0 + 5))
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        for envelope in envelopes:
            body, headers = signed(envelope)
            response = await c.post("/webhooks/clerk", content=body, headers=headers)
            assert response.status_code == 200, response.text
    await _drain(settings)
    return p


async def _drain(settings: Settings) -> None:
    worker = build_worker(settings, burst=True, with_cron=False)
    try:
        await asyncio.wait_for(worker.main(), timeout=60)
    finally:
        await worker.close()
