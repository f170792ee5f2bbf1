"""A faithful fake of Clerk's Backend API (read side), served over real HTTP on loopback.

Faithful to clerk-facts.md section 3: bare array for /users plus /users/count (which counts
within created_at_after / created_at_before), {data, total_count} elsewhere, organizations'
members_count only with include_members_count, limit 1..500 (default 10, 422 outside),
offset >= 0, order_by with +/- any field the spec lists for that list (default -created_at),
starting_after cursor for /users (422 with a non-created_at order or a non-zero offset),
Clerk's error JSON for 401/404/422/429/5xx, Retry-After on 429.
With `sparse`, each object leaves out each top-level field the backend spec does not require
with that probability (the same fields each time it is served), as Clerk's answers may.
Faults (5xx, 429, slow answers, bad JSON) and data changes between and during runs are scripted.
The paging rules are in clerk_paging.py, the instances it can serve in clerk_instances.py.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.dev.ports import free_port
from tests.support import clerk_paging, clerk_spec
from tests.support.clerk_instances import Synthetic
from tests.support.clerk_payloads import INSTANCE_ID

KEY = "sk_test_fake_replica_key"


@dataclass
class Fault:
    kind: str  # status | rate_limited | slow | bad_json
    status: int = 503
    retry_after: int = 1
    seconds: float = 0.0
    path: str | None = None  # only requests whose path contains this


@dataclass
class Logged:
    at: float
    path: str
    params: dict[str, str]
    status: int


def error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    body = {
        "errors": [{"code": code, "message": message, "long_message": message, "meta": {}}],
        "meta": {},
        "clerk_trace_id": uuid4().hex,
    }
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass
class FakeClerk:
    key: str = KEY
    # What GET /instance says the key belongs to.
    instance_id: str = INSTANCE_ID
    environment_type: str = "development"
    rate_limit_per_10s: int | None = None
    # Each answer waits latency ± jitter seconds, as a real round trip to Clerk does (the
    # server keeps answering others meanwhile).
    latency_seconds: float = 0.0
    jitter_seconds: float = 0.0
    supports_cursor: bool = True
    # Whether /users' created_at_after / created_at_before include their bound (unsaid).
    inclusive_created_bounds: bool = False
    # The share of optional fields left out of what is served (0: every field is sent).
    sparse: float = 0.0
    users: Any = field(default_factory=list)
    organizations: list[dict[str, Any]] = field(default_factory=list)
    memberships: list[dict[str, Any]] = field(default_factory=list)
    invitations: list[dict[str, Any]] = field(default_factory=list)
    domains: list[dict[str, Any]] = field(default_factory=list)
    roles: list[dict[str, Any]] = field(default_factory=list)
    permissions: list[dict[str, Any]] = field(default_factory=list)
    waitlist_entries: list[dict[str, Any]] = field(default_factory=list)
    billing_plans: list[dict[str, Any]] = field(default_factory=list)
    billing_subscription_items: list[dict[str, Any]] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)
    log: list[Logged] = field(default_factory=list)
    # Called (in the server's thread) before each list request: mutate data mid-run, or
    # return a Response to answer with it instead.
    on_list: Callable[[str, dict[str, str]], Any] | None = None
    # Called before each read of one object (kind, id): a Response returned answers instead.
    on_get: Callable[[str, str], Any] | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    _window: deque[float] = field(default_factory=deque)

    # -- the app -------------------------------------------------------------------------

    def app(self) -> Starlette:
        routes = [
            Route("/v1/instance", self._instance),
            Route("/v1/users", self._list("users", bare=True)),
            Route("/v1/users/count", self._users_count),
            Route("/v1/users/{id}", self._get("users")),
            Route("/v1/organizations", self._list("organizations")),
            Route("/v1/organizations/{id}", self._get("organizations")),
            Route("/v1/organizations/{org}/memberships", self._org_memberships),
            Route("/v1/organizations/{org}/invitations/{id}", self._get("invitations")),
            Route("/v1/organizations/{org}/domains", self._org_domains),
            Route("/v1/organization_memberships", self._list("memberships")),
            Route("/v1/organization_invitations", self._list("invitations")),
            Route("/v1/organization_domains", self._list("domains")),
            Route("/v1/organization_roles", self._list("roles")),
            Route("/v1/organization_roles/{id}", self._get("roles")),
            Route("/v1/organization_permissions", self._list("permissions")),
            Route("/v1/organization_permissions/{id}", self._get("permissions")),
            Route("/v1/waitlist_entries", self._list("waitlist_entries")),
            Route("/v1/billing/plans", self._list("billing_plans")),
            Route("/v1/billing/subscription_items", self._list("billing_subscription_items")),
        ]
        app = Starlette(routes=routes)
        app.add_exception_handler(404, self._not_found)
        return app

    async def _not_found(self, request: Request, _exc: Exception) -> Response:
        return error(404, "resource_not_found", "not found")

    async def _gate(self, request: Request) -> Response | None:
        """Latency, auth, rate limit and scripted faults, in the order Clerk would apply them."""
        if self.latency_seconds or self.jitter_seconds:
            spread = random.uniform(-self.jitter_seconds, self.jitter_seconds)
            await asyncio.sleep(max(0.0, self.latency_seconds + spread))
        if request.headers.get("authorization") != f"Bearer {self.key}":
            return error(401, "authentication_invalid", "Unauthorized request")
        with self.lock:
            now = time.monotonic()
            if self.rate_limit_per_10s is not None:
                while self._window and self._window[0] <= now - 10:
                    self._window.popleft()
                if len(self._window) >= self.rate_limit_per_10s:
                    wait = math.ceil(self._window[0] + 10 - now)
                    return error(
                        429, "too_many_requests", "Too many requests", **{"Retry-After": str(wait)}
                    )
                self._window.append(now)
            fault = None
            # Scripted faults are for the lists and lookups; GET /instance (which every run
            # asks first) takes only those that name it.
            anywhere = request.url.path != "/v1/instance"
            if self.faults and (
                (self.faults[0].path is None and anywhere)
                or (self.faults[0].path is not None and self.faults[0].path in request.url.path)
            ):
                fault = self.faults.popleft()
        if fault is None:
            return None
        if fault.kind == "status":
            return error(fault.status, "internal_clerk_error", "Something went wrong")
        if fault.kind == "rate_limited":
            return error(
                429,
                "too_many_requests",
                "Too many requests",
                **{"Retry-After": str(fault.retry_after)},
            )
        if fault.kind == "slow":
            await asyncio.sleep(fault.seconds)
            return None
        if fault.kind == "bad_json":
            return Response(b"<html>bad gateway</html>", status_code=200, media_type="text/html")
        raise AssertionError(fault.kind)

    def _record(self, request: Request, response: Response) -> Response:
        with self.lock:
            self.log.append(
                Logged(
                    time.monotonic(),
                    request.url.path,
                    dict(request.query_params),
                    response.status_code,
                )
            )
        return response

    def _list(self, name: str, bare: bool = False) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            refused = await self._gate(request)
            if refused is not None:
                return self._record(request, refused)
            params = dict(request.query_params)
            if self.on_list is not None:
                override = self.on_list(name, params)
                if isinstance(override, Response):
                    return self._record(request, override)
            try:
                with self.lock:
                    cursor = name == "users" and self.supports_cursor
                    page, total = clerk_paging.page(
                        self._by_ids(name, request.query_params.getlist("user_id")),
                        params,
                        cursor=cursor,
                        name=name,
                        inclusive_bounds=self.inclusive_created_bounds,
                    )
            except clerk_paging.Invalid as exc:
                return self._record(request, error(422, exc.code, exc.message))
            if page and isinstance(page[0], bytes):  # pre-encoded: join, do not re-encode
                joined = b"[" + b",".join(page) + b"]"
                raw = joined if bare else b'{"data":%s,"total_count":%d}' % (joined, total)
                return self._record(request, Response(raw, media_type="application/json"))
            if name == "organizations":
                page = self._members_counted(page, params.get("include_members_count") == "true")
            page = [self._served(name, o) for o in page]
            body: Any = page if bare else {"data": page, "total_count": total}
            return self._record(request, JSONResponse(body))

        return endpoint

    async def _instance(self, request: Request) -> Response:
        refused = await self._gate(request)
        if refused is not None:
            return self._record(request, refused)
        body = {
            "object": "instance",
            "id": self.instance_id,
            "environment_type": self.environment_type,
            "allowed_origins": None,
            "workspace_id": None,
        }
        return self._record(request, JSONResponse(body))

    async def _users_count(self, request: Request) -> Response:
        refused = await self._gate(request)
        if refused is not None:
            return self._record(request, refused)
        params = dict(request.query_params)
        try:
            with self.lock:
                count = clerk_paging.count(
                    self.users, params, inclusive_bounds=self.inclusive_created_bounds
                )
        except clerk_paging.Invalid as exc:
            return self._record(request, error(422, exc.code, exc.message))
        return self._record(request, JSONResponse({"object": "total_count", "total_count": count}))

    def _get(self, name: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            refused = await self._gate(request)
            if refused is not None:
                return self._record(request, refused)
            wanted = request.path_params["id"]
            if self.on_get is not None:
                override = self.on_get(name, wanted)
                if override is not None:
                    return self._record(request, override)
            with self.lock:
                items = getattr(self, name)
                if isinstance(items, Synthetic):
                    index = items.index_of(wanted)
                    found = items[index] if index is not None else None
                else:
                    found = next((o for o in items if o["id"] == wanted), None)
            if found is None:
                return self._record(
                    request,
                    error(404, "resource_not_found", f"No {name[:-1]} was found with id {wanted}"),
                )
            return self._record(request, JSONResponse(self._served(name, found)))

        return endpoint

    async def _org_memberships(self, request: Request) -> Response:
        refused = await self._gate(request)
        if refused is not None:
            return self._record(request, refused)
        org = request.path_params["org"]
        if self.on_list is not None:
            override = self.on_list(f"organizations/{org}/memberships", dict(request.query_params))
            if isinstance(override, Response):
                return self._record(request, override)
        user_ids = request.query_params.getlist("user_id")
        with self.lock:
            if not any(o["id"] == org for o in self.organizations):
                return self._record(
                    request, error(404, "resource_not_found", "No organization was found")
                )
            found = [
                m
                for m in self.memberships
                if m["organization"]["id"] == org
                and (not user_ids or m["public_user_data"]["user_id"] in user_ids)
            ]
            try:
                found, total = clerk_paging.page(
                    found, dict(request.query_params), cursor=False, name="memberships"
                )
            except clerk_paging.Invalid as exc:
                return self._record(request, error(422, exc.code, exc.message))
        found = [self._served("memberships", m) for m in found]
        return self._record(request, JSONResponse({"data": found, "total_count": total}))

    async def _org_domains(self, request: Request) -> Response:
        refused = await self._gate(request)
        if refused is not None:
            return self._record(request, refused)
        org = request.path_params["org"]
        with self.lock:
            if not any(o["id"] == org for o in self.organizations):
                return self._record(
                    request, error(404, "resource_not_found", "No organization was found")
                )
            found = [
                self._served("domains", d) for d in self.domains if d["organization_id"] == org
            ]
        return self._record(request, JSONResponse({"data": found, "total_count": len(found)}))

    def _by_ids(self, name: str, wanted: list[str]) -> Any:
        """The list, or only the users `user_id` names (up to 100, as the spec says)."""
        items = getattr(self, name)
        if name != "users" or not wanted:
            return items
        if len(wanted) > 100:
            raise clerk_paging.Invalid("user_id takes up to 100 ids")
        chosen = set(wanted)
        if isinstance(items, Synthetic):
            found = (items.index_of(i) for i in chosen)
            return [items[i] for i in sorted(i for i in found if i is not None)]
        return [o for o in items if o["id"] in chosen]

    def _members_counted(self, orgs: list[Any], counted: bool) -> list[Any]:
        """Organizations with their `members_count` (their live memberships) only when asked
        (`include_members_count`), as Clerk serves them."""
        if orgs and isinstance(orgs[0], bytes):  # synthetic: the count is made with the object
            return orgs
        per_org: dict[str, int] = {}
        if counted:
            for m in self.memberships:
                per_org[m["organization"]["id"]] = per_org.get(m["organization"]["id"], 0) + 1
        served = []
        for org in orgs:
            org = {k: v for k, v in org.items() if k != "members_count"}
            if counted:
                org["members_count"] = per_org.get(org["id"], 0)
            served.append(org)
        return served

    def _served(self, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        """`obj` as served: with `sparse`, some of its optional fields left out, chosen by its
        id so that every answer about it leaves out the same ones."""
        if not self.sparse:
            return obj
        optional = clerk_spec.optional_fields(name)
        chance = random.Random(f"{name}:{obj.get('id')}")
        return {k: v for k, v in obj.items() if k not in optional or chance.random() >= self.sparse}

    # -- helpers for tests -----------------------------------------------------------------

    def requests_to(self, path: str) -> list[Logged]:
        with self.lock:
            return [entry for entry in self.log if entry.path == f"/v1/{path}"]

    def delete(self, name: str, object_id: str) -> None:
        with self.lock:
            setattr(self, name, [o for o in getattr(self, name) if o["id"] != object_id])


@contextmanager
def serve(fake: FakeClerk) -> Iterator[str]:
    """Run the fake on a real uvicorn server on loopback; yields its base URL (.../v1)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(fake.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the fake Clerk API did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
