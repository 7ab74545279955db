"""What this process may use of the machine it runs on."""

import os


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the system keeps one (a container's
    CPU set, `taskset`, a test worker pinned to its own core), otherwise every core of the machine.

    Threads beyond these cores only wait for each other: two torch or llama.cpp threads on one core
    made tiny-model calls up to ten times slower than one."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows keep no affinity set that Python can read
        return os.cpu_count() or 1
