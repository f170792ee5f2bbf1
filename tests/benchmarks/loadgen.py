"""An open-loop load generator: pre-signed deliveries sent on a fixed schedule.

Delivery i is due at start + i / rate whatever happened to the earlier ones, and its latency is
measured from that due time, not from when a connection was free to send it. A closed-loop
client (wrk) waits for answers before sending more, so a slow server slows the client and the
queueing never shows in its percentiles (coordinated omission); here it does.

Deliveries go over a few keep-alive HTTP/1.1 connections (no pipelining, like Svix), spread
over one or more ports. Runs in its own process so it does not share the measured process's
event loop or the benchmark's. Times are CLOCK_MONOTONIC (time.monotonic), which every process
on the machine shares, so the benchmark can compare them with its own.

    python -m tests.benchmarks.loadgen --file reqs.tsv --ports 8000 --rate 1000 \
        --start-at <monotonic seconds> --out results.tsv

Writes one line per delivery to --out: index, HTTP status (0: no answer), due, sent, acked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks.signed import read

NO_ANSWER = 0


@dataclass(frozen=True)
class Result:
    """One delivery as the generator saw it; times are time.monotonic() seconds."""

    index: int
    status: int
    due: float
    sent: float
    acked: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def command(
    file: Path, ports: list[int], rate: float, connections: int, start_at: float, out: Path
) -> list[str]:
    """The argv that runs this generator in its own process."""
    return [
        *(sys.executable, "-m", "tests.benchmarks.loadgen", "--file", str(file)),
        *("--ports", ",".join(map(str, ports)), "--rate", str(rate)),
        *("--connections", str(connections), "--start-at", f"{start_at:.6f}", "--out", str(out)),
    ]


def results(out: Path) -> list[Result]:
    rows = (line.split("\t") for line in out.read_text().splitlines())
    return [Result(int(i), int(s), float(d), float(t), float(a)) for i, s, d, t, a in rows]


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (content-length framed, as uvicorn sends); its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def run(
    requests: list[bytes],
    ports: list[int],
    rate: float,
    connections: int,
    start_at: float,
    answer_within: float,
) -> list[tuple[int, float, float, float]]:
    """(status, due, sent, acked) per delivery, in index order; due = start_at + i / rate."""
    results: list[tuple[int, float, float, float]] = [(NO_ANSWER, 0.0, 0.0, 0.0)] * len(requests)
    due: asyncio.Queue[int | None] = asyncio.Queue()

    async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", port)

    async def connection(port: int) -> None:
        reader, writer = await connect(port)
        try:
            while (i := await due.get()) is not None:
                sent = time.monotonic()
                try:
                    writer.write(requests[i])
                    status = await asyncio.wait_for(read_response(reader), answer_within)
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                    status = NO_ANSWER
                    writer.close()
                    reader, writer = await connect(port)
                results[i] = (status, start_at + i / rate, sent, time.monotonic())
        finally:
            writer.close()

    async def schedule() -> None:
        for i in range(len(requests)):
            wait = start_at + i / rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            due.put_nowait(i)
        for _ in range(connections):
            due.put_nowait(None)

    workers = [asyncio.create_task(connection(ports[n % len(ports)])) for n in range(connections)]
    await asyncio.sleep(0)  # let the connections open before the clock starts
    await schedule()
    await asyncio.gather(*workers)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--ports", required=True, help="comma-separated, on 127.0.0.1")
    parser.add_argument("--rate", type=float, required=True, help="deliveries per second")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--start-at", type=float, help="time.monotonic() to start at")
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    ports = [int(p) for p in args.ports.split(",")]
    requests = [d.http_request(f"127.0.0.1:{ports[0]}") for d in read(args.file)]
    start_at = args.start_at or time.monotonic() + 0.5
    results = asyncio.run(run(requests, ports, args.rate, args.connections, start_at, args.timeout))
    with args.out.open("w") as out:
        for i, (status, scheduled, sent, acked) in enumerate(results):
            out.write(f"{i}\t{status}\t{scheduled:.6f}\t{sent:.6f}\t{acked:.6f}\n")


if __name__ == "__main__":
    main()
