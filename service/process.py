"""How the long-running commands (serve, worker, reconcile) set up the interpreter: uvloop
where it is installed (not on Windows), and a garbage collector tuned for pages of parsed JSON
(a generation-0 collection every GC_GEN0 allocations; what start-up made is frozen, so no
collection scans it again). Why: docs/explanation/how-it-works.md.
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
