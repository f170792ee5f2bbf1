"""How the long-running commands (serve, worker, reconcile) set up the interpreter.

The event loop: uvloop where it is installed (not on Windows), less overhead per round trip.

The garbage collector: a reconcile page or an apply batch makes tens of thousands of
containers (parsed JSON, rows) that live until the page is written. At CPython's default
threshold of 700 allocations the collector then runs a hundred times per page and its older
generations rescan everything in flight, a large share of reconcile's CPU. A collection every
GC_GEN0 allocations takes most of that back, while collecting often enough that cyclic garbage
does not pile up in a reconcile's peak memory (the README's performance section has the
figures). What start-up made (modules, settings) is frozen: no collection scans it again.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

GC_GEN0 = 5_000


def tune_gc() -> None:
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0, gen1, gen2)


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run for a command: on uvloop, with the collector tuned."""
    tune_gc()
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(main)
