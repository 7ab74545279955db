"""What this process may use of the machine it runs on."""

import ctypes
import ctypes.util
import functools
import gc
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


def usable_cores() -> int:
    """How many cores this process may run on (`usable_core_ids`).

    Threads beyond these cores only wait for each other: two torch or llama.cpp threads on one core
    made tiny-model calls up to ten times slower than one."""
    return len(usable_core_ids())


def usable_core_ids() -> set[int]:
    """The cores this process may run on: its CPU affinity where the system keeps one (a container's
    CPU set, `taskset`, a test worker pinned to its own core), otherwise every core of the machine."""
    try:
        return os.sched_getaffinity(0)
    except AttributeError:  # macOS and Windows keep no affinity set that Python can read
        return set(range(os.cpu_count() or 1))


@dataclass
class CpuShare:
    """What other processes took of this process's cores while a block ran (`others_cpu_share`)."""

    others: float | None = None  # 0 quiet, 0.5 with one busy process beside us on 2 cores; None: not known


@contextmanager
def others_cpu_share() -> Iterator[CpuShare]:
    """Measure the share of CPU time on this process's cores (`usable_core_ids`) that other processes, and
    the hypervisor (steal time), took while the block ran: those cores' busy time from /proc/stat less
    this process's own. A speed measured while others take a large share is not the machine's own.

    Readable on Linux only; elsewhere the share stays None."""
    share = CpuShare()
    cores = usable_core_ids()
    cores_before, ours_before, started = _busy_seconds(cores), time.process_time(), time.monotonic()
    yield share
    cores_after, ours_after, wall = _busy_seconds(cores), time.process_time(), time.monotonic() - started
    if cores_before is None or cores_after is None or wall <= 0:
        return
    others = (cores_after - cores_before) - (ours_after - ours_before)
    share.others = min(1.0, max(0.0, others / (wall * len(cores))))


def _busy_seconds(cores: set[int]) -> float | None:
    """CPU seconds these cores have spent busy since boot, stolen by the hypervisor included."""
    busy = 0
    try:
        for line in Path("/proc/stat").read_text(encoding="ascii").splitlines():
            name, *fields = line.split() or [""]
            if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores):
                continue
            # cpuN user nice system idle iowait irq softirq steal ...: guest time is already in user.
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
            busy += user + nice + system + irq + softirq + steal
    except (OSError, ValueError):
        return None
    return busy / os.sysconf("SC_CLK_TCK")


def threads_within_cores(requested: int | None) -> int:
    """The threads to run llama.cpp on: `requested`, or the usable cores when none were given or more.

    llama.cpp's threads spin at every barrier, so a thread beyond the cores does not wait its turn
    quietly: two on one core waited a scheduler slice for each other at every layer and a test that
    takes a minute ran until CI gave up. More threads than cores never help, so they are not taken."""
    cores = usable_cores()
    if requested and requested > cores:
        log.warning("--threads %d: this process may run on %d cores; using %d", requested, cores, cores)
    return min(requested, cores) if requested else cores


def release_freed_memory(young_garbage_only: bool = False) -> bool:
    """Give the pages of memory this process has freed back to the system; True where it could.

    glibc's allocator keeps freed blocks resident for reuse, and a training step frees blocks of sizes
    the next step cannot always reuse: `socratic train` grew by ~1 GB over its first three steps
    (SmolLM2-135M, rows of 1,024 tokens) with no tensor more alive, and each student of `socratic run`
    started above the last. `malloc_trim(0)` returns those pages (it is glibc's, so elsewhere this only
    collects Python's garbage). Training calls it once per optimizer step: a call takes milliseconds,
    but the next pass faults the pages in again (once per pass of one row made training 1.09x as
    long), against the ~50 % slower steps of making every large block its own mapping
    (`MALLOC_MMAP_THRESHOLD_`).

    `young_garbage_only` collects only the objects made since the last collections (generations 0 and
    1), which is what a training step leaves: a full collection walks every object of torch,
    transformers and TRL too, 0.2 s each time in a training process, ~11 s over the demo's 54
    micro-batches and steps of one student."""
    gc.collect(1 if young_garbage_only else 2)
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def freeze_live_objects() -> None:
    """Collect the garbage, then leave every object still alive out of all later collections
    (`gc.freeze`): long-lived objects (imported libraries, a session's fixtures) are then not walked by
    every full collection again, ~0.2 s each time in a process holding torch and transformers. An
    object frozen and dropped later is still freed by reference counting; only one in a reference
    cycle then stays until the process ends."""
    gc.collect()
    gc.freeze()


@functools.cache
def c_library() -> ctypes.CDLL | None:
    """The C library this process runs on (glibc's calls: malloc_trim, prctl), or None where ctypes
    cannot find or open one."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def _malloc_trim() -> Callable[[int], int] | None:
    return getattr(c_library(), "malloc_trim", None)  # glibc's alone (not musl's, not macOS's)


# Kernels oneDNN keeps for the matrix shapes it has met (its default keeps 1,024).
KERNEL_CACHE_SHAPES = 64
COMPUTATION_CACHE_SHAPES = 16


def no_hub_kernels() -> None:
    """Keep transformers from swapping a model's layers for kernels fetched from the Hugging Face Hub as it
    loads the model: transformers 5.x does so by default wherever the `kernels` package is installed (one
    of its own requirements), and on a GPU that is code downloaded at run time, which nothing socratic runs
    may do, and other arithmetic than every figure in docs/RESULTS.md (PyTorch's own layers). On a CPU it
    replaced nothing (SmolLM2's RMSNorm kept transformers' forward). Called when socratic is imported, so
    it holds for the command line, the stages' processes and the Python API; `USE_HUB_KERNELS=1` set
    before that turns the kernels back on."""
    os.environ.setdefault("USE_HUB_KERNELS", "0")


def bound_kernel_cache() -> None:
    """Bound the two caches of PyTorch's CPU matrix products: oneDNN keeps the kernels of 64 recent
    shapes, not 1,024, and ideep (PyTorch's layer over oneDNN) its prepared computations of 16, not 1,024.

    Packed training rows change shape every micro-batch (the row's length, the trained positions whose
    logits are computed), and each new shape was kept in both: a training grew ~100 MiB an optimizer
    step with nothing of its own alive (SmolLM2-135M, rows of 512 tokens, 8 a step: 2,207 → 2,684 MiB
    held after steps 1 to 6). oneDNN's bound halved that growth (maximum resident set 3,923,704 →
    ~3,654,000 kB); the rest was ideep's cache (`LRU_CACHE_CAPACITY`): glibc's heap in use grew ~60 MiB a
    step (1,073 → 1,249 MiB over 4 steps) with the same tensors and Python objects alive, and stayed at
    ~1,000 MiB with 16, at the same speed (docs/RESULTS.md). Both are read when the first product is
    computed, so this is called before training starts; a value the user set is kept."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(KERNEL_CACHE_SHAPES))
    os.environ.setdefault("LRU_CACHE_CAPACITY", str(COMPUTATION_CACHE_SHAPES))
