"""A bound on the work a block of code does: `with cpu_seconds_under(0.05): calculate(text)`.

Tests that guard against hangs (a hostile expression, a hostile file) bound this thread's CPU time, not
wall time: on a loaded CI machine wall time once gave a 1 ms expression 0.6 s. Automatic garbage
collection is held off too. A full collection costs what the whole process holds, not what the block
made: 0.11 s once torch and transformers are imported, more in a worker that has trained models. One
landed inside a 0.1 ms calculator case and failed its 0.05 s bound (`test_calculator_contract[slow]`,
CI, 2026-12-08; docs/RESULTS.md has the measurements). A hang is the block's own work, so it is still
caught, and the code under test makes little cyclic garbage to wait for.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cpu_seconds_under(bound: float) -> Iterator[None]:
    """Fail unless the block takes under `bound` seconds of this thread's CPU time, without collections."""
    collecting = gc.isenabled()
    gc.disable()
    started = time.thread_time()
    try:
        yield
    finally:
        seconds = time.thread_time() - started
        if collecting:
            gc.enable()
    assert seconds < bound, f"took {seconds:.3f} s of CPU time, over its bound of {bound} s"
