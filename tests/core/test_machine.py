"""The cores a process may use: its affinity set, not the machine's count (a container, `taskset`, a
pinned test worker); memory handed back, kernel caches bounded, living objects frozen, no Hub kernels; the
CPU other processes take."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from socratic.core import machine
from socratic.core.machine import others_cpu_share, release_freed_memory, threads_within_cores, usable_cores


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this system")
def test_a_process_pinned_to_one_core_uses_one_whatever_the_machine_has():
    one_core = min(os.sched_getaffinity(0))
    code = f"import os; os.sched_setaffinity(0, {{{one_core}}}); from socratic.core.machine import usable_cores; "
    code += "print(usable_cores())"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "1\n"


def test_without_an_affinity_set_every_core_of_the_machine(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 7)
    assert usable_cores() == 7
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # "cannot be determined"
    assert usable_cores() == 1


def test_llama_cpp_threads_never_outnumber_the_cores(monkeypatch, caplog):
    monkeypatch.setattr(machine, "usable_cores", lambda: 2)
    assert threads_within_cores(None) == 2
    assert threads_within_cores(1) == 1
    assert not caplog.records
    assert threads_within_cores(8) == 2
    assert "--threads 8: this process may run on 2 cores; using 2" in caplog.text


def _resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator and /proc: Linux")
def test_memory_freed_between_live_blocks_goes_back_to_the_system():
    # 200 MB of 64 KB blocks from malloc's heap, all freed but the last: the allocator keeps the freed
    # pages resident (the last block pins the heap's top), as it kept a training step's activations
    import ctypes

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(64 * 1024) for _ in range(3200)]
    for block in blocks:
        ctypes.memset(block, 1, 64 * 1024)
    for block in blocks[:-1]:
        libc.free(block)
    held = _resident_mb()
    assert release_freed_memory()
    assert held - _resident_mb() > 150
    libc.free(blocks[-1])


def test_the_kernel_caches_are_bounded_unless_the_user_set_them(monkeypatch):
    for name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"):
        monkeypatch.delenv(name, raising=False)
    machine.bound_kernel_cache()
    assert (os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"], os.environ["LRU_CACHE_CAPACITY"]) == ("64", "16")
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "512")
    monkeypatch.setenv("LRU_CACHE_CAPACITY", "256")
    machine.bound_kernel_cache()
    assert (os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"], os.environ["LRU_CACHE_CAPACITY"]) == ("512", "256"), (
        "the user's own values are kept"
    )


def test_freezing_collects_the_garbage_first_and_keeps_the_living_out_of_later_collections():
    import gc
    import weakref

    class Node:
        pass

    cycle, kept = Node(), Node()
    cycle.itself = cycle  # garbage only a collection frees
    gone = weakref.ref(cycle)
    del cycle
    frozen_before = gc.get_freeze_count()
    machine.freeze_live_objects()
    assert gone() is None, "the garbage was collected before anything was frozen"
    assert gc.get_freeze_count() > frozen_before
    assert not any(o is kept for o in gc.get_objects()), "what lives is left out of the collections' walks"


def test_models_load_without_hub_kernels_unless_the_user_asks_for_them(tiny_decoder, monkeypatch):
    """transformers 5.x kernelizes every model it loads where `kernels` is installed (from the Hub, on a GPU);
    importing socratic turns that off (in a fresh interpreter, as a user's), and a `USE_HUB_KERNELS` the
    user set is kept."""
    code = (
        "import os, socratic; from transformers import AutoModelForCausalLM; "
        f"model = AutoModelForCausalLM.from_pretrained({str(tiny_decoder)!r}); "
        "print(os.environ['USE_HUB_KERNELS'], getattr(model, 'use_kernels', False))"
    )
    environment = {k: v for k, v in os.environ.items() if k != "USE_HUB_KERNELS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0", "False"]
    monkeypatch.setenv("USE_HUB_KERNELS", "1")
    machine.no_hub_kernels()
    assert os.environ["USE_HUB_KERNELS"] == "1"


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads Linux's /proc/stat")
def test_the_cpu_another_process_takes_is_measured():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # running
        with others_cpu_share() as busy:
            time.sleep(1.0)
    finally:
        spinner.kill()
        spinner.wait()
    # The spinner runs on this process's cores (it inherits their set): one of them, or most of it.
    assert 0.8 / usable_cores() <= busy.others <= 1.0


def test_without_proc_stat_the_share_is_unknown(monkeypatch):
    monkeypatch.setattr(machine, "_busy_seconds", lambda cores: None)
    with others_cpu_share() as busy:
        pass
    assert busy.others is None
