"""tests/bounds.py: the CPU bound fails slow blocks, and holds garbage collection off only inside the block."""

from __future__ import annotations

import gc
import time

import pytest

from tests.bounds import cpu_seconds_under


def test_a_block_over_its_bound_fails_with_its_time():
    over = pytest.raises(AssertionError, match=r"took 0\.\d{3} s of CPU time, over its bound of 0.01 s")
    with over, cpu_seconds_under(0.01):
        started = time.thread_time()
        while time.thread_time() - started < 0.02:
            pass


def test_collections_wait_until_the_block_ends():
    assert gc.isenabled()
    with cpu_seconds_under(1.0):
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError), cpu_seconds_under(1.0):
        1 / 0  # noqa: B018 - an error inside the block is the block's, and collection resumes
    assert gc.isenabled()
