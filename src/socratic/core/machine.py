"""What this process may use of the machine it runs on."""

import logging
import os

log = logging.getLogger(__name__)


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the system keeps one (a container's
    CPU set, `taskset`, a test worker pinned to its own core), otherwise every core of the machine.

    Threads beyond these cores only wait for each other: two torch or llama.cpp threads on one core
    made tiny-model calls up to ten times slower than one."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows keep no affinity set that Python can read
        return os.cpu_count() or 1


def threads_within_cores(requested: int | None) -> int:
    """The threads to run llama.cpp on: `requested`, or the usable cores when none were given or more.

    llama.cpp's threads spin at every barrier, so a thread beyond the cores does not wait its turn
    quietly: two on one core waited a scheduler slice for each other at every layer and a test that
    takes a minute ran until CI gave up. More threads than cores never help, so they are not taken."""
    cores = usable_cores()
    if requested and requested > cores:
        log.warning("--threads %d: this process may run on %d cores; using %d", requested, cores, cores)
    return min(requested, cores) if requested else cores
