"""The commands' interpreter set-up: collector thresholds, and coroutines run to completion."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys

from service import process


def test_tune_gc_raises_the_first_threshold_and_freezes_start_up_objects() -> None:
    # In a child: the test process's own collector stays as pytest set it.
    code = (
        "import gc; from service import process; before = gc.get_threshold(); "
        "process.tune_gc(); after = gc.get_threshold(); "
        "print(before[0], after[0], after[1:] == before[1:], gc.get_freeze_count() > 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["700", str(process.GC_GEN0), "True", "True"]


def test_run_returns_what_the_coroutine_returns_on_a_fresh_loop() -> None:
    async def main() -> str:
        return type(asyncio.get_running_loop()).__module__

    threshold = gc.get_threshold()
    try:
        # uvloop is a dependency wherever it installs (not on Windows).
        assert process.run(main()).startswith("uvloop")
    finally:  # run() tunes the collector of this test process too: undo it
        gc.unfreeze()
        gc.set_threshold(*threshold)
