"""The disk's own commit latency, measured beside a fixed-rate run: the floor under ingest's p99.

An acknowledged delivery waits for PostgreSQL to flush its WAL, so a stall of the disk shows up
in ingest's tail whatever the code does. This writes 8 KiB and calls fdatasync at a steady rate
(as a WAL flush does) in the benchmark's work directory, on the same filesystem as the embedded
PostgreSQL, and prints each flush's latency in ms, one per line.

    python -m tests.benchmarks.fsync_probe DIR SECONDS [RATE]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.benchmarks.measure import percentile

BLOCK = b"\0" * 8192


def probe(directory: Path, seconds: float, rate: float) -> list[float]:
    path = directory / f"fsync-probe-{os.getpid()}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    latencies = []
    try:
        start = time.monotonic()
        for n in range(int(seconds * rate)):
            if (delay := start + n / rate - time.monotonic()) > 0:
                time.sleep(delay)
            os.write(fd, BLOCK)
            began = time.perf_counter()
            os.fdatasync(fd)
            latencies.append((time.perf_counter() - began) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    return latencies


def start(directory: Path, seconds: float) -> subprocess.Popen[str]:
    """Probe in a child process for `seconds`; collect() its latencies."""
    argv = [sys.executable, "-m", "tests.benchmarks.fsync_probe", str(directory), str(seconds)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def collect(child: subprocess.Popen[str]) -> list[float]:
    return [float(line) for line in child.communicate(timeout=60)[0].split()]


def rows(
    latencies: list[float], label: str, p99: float, worst: float
) -> list[tuple[str, str, str, str]]:
    """Table rows: the disk's p50, p99 and max beside what `label` measured (ratios)."""
    d99, dmax = percentile(latencies, 99), max(latencies, default=float("nan"))
    return [
        ("disk, same run: 8 KiB fdatasync, p50", f"{percentile(latencies, 50):.1f} ms", "", ""),
        (
            "disk, same run: 8 KiB fdatasync, p99",
            f"{d99:.1f} ms",
            f"{p99 / d99:.2f}",
            f"{label} p99 / it",
        ),
        (
            "disk, same run: 8 KiB fdatasync, max",
            f"{dmax:.1f} ms",
            f"{worst / dmax:.2f}",
            f"{label} max / it",
        ),
    ]


def main() -> None:
    directory, seconds = Path(sys.argv[1]), float(sys.argv[2])
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 200.0
    sys.stdout.write("".join(f"{ms:.3f}\n" for ms in probe(directory, seconds, rate)))


if __name__ == "__main__":
    main()
