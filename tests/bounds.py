"""A bound on the work a block of code does: `with cpu_seconds_under(0.05): calculate(text)`.

Tests that guard against hangs (a hostile expression, a hostile file) bound this thread's CPU time, not wall
time: on a loaded CI machine wall time once gave a 1 ms expression 0.6 s. Garbage collection is left out
too. A full collection costs whatever the whole process holds, not what the block did: 0.11 s in a process
that has imported torch and transformers, more in a worker that has trained models. It once landed inside a
0.1 ms calculator case and failed a 0.05 s bound (`test_calculator_contract[slow]`, in CI on 2026-12-08). The code
under test makes little cyclic garbage, and a hang is its own work, so neither is hidden.
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
