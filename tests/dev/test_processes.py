"""service.dev.processes: children are stopped in the order asked, killed when they ignore
SIGTERM, and a name is free again once its child has exited."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.dev.processes import Children, stop

# Writes its name to `order` on SIGTERM, then exits; with "stubborn", ignores SIGTERM.
CHILD = """
import signal, sys, time
name, order = sys.argv[1], sys.argv[2]
def bye(*_):
    with open(order, "a") as f:
        f.write(name + "\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN if name == "stubborn" else bye)
print("started", name, flush=True)
while True:
    time.sleep(0.05)
"""


def spawn(children: Children, name: str, order: Path) -> subprocess.Popen[bytes]:
    proc = children.spawn(name, [sys.executable, "-c", CHILD, name, str(order)], os.environ)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # its SIGTERM handler is set once it prints
        log = children.output / f"{name}.log" if isinstance(children.output, Path) else None
        if log is not None and b"started" in log.read_bytes():
            return proc
        time.sleep(0.02)
    raise AssertionError(f"{name} did not start")


def test_stop_follows_the_order_given_then_the_rest_last_started_first(tmp_path: Path) -> None:
    order = tmp_path / "order"
    children = Children(tmp_path, stop_timeout=5)
    for name in ("redis", "web", "worker", "extra"):
        spawn(children, name, order)
    children.stop("web", "worker", "not-started")
    children.stop_all()
    assert order.read_text().split() == ["web", "worker", "extra", "redis"]
    assert children.running == {}
    children.stop_all()  # idempotent


def test_a_child_ignoring_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    children = Children(tmp_path, stop_timeout=0.5)
    proc = spawn(children, "stubborn", tmp_path / "order")
    started = time.monotonic()
    children.stop_all()
    assert proc.returncode == -9 and time.monotonic() - started < 5


def test_a_name_is_reused_only_once_its_child_has_exited(tmp_path: Path) -> None:
    children = Children(tmp_path, stop_timeout=5)
    first = spawn(children, "worker", tmp_path / "order")
    with pytest.raises(ValueError, match="still running"):
        children.spawn("worker", [sys.executable, "-c", "pass"], os.environ)
    stop(first, timeout=5)
    assert children.exited() == ("worker", 0)
    second = spawn(children, "worker", tmp_path / "order")
    assert children.running == {"worker": second} and children.exited() is None
    children.stop_all()
