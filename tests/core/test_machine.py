"""The cores a process may use: its affinity set, not the machine's count (a container, `taskset`, a
pinned test worker)."""

import os
import subprocess
import sys

import pytest

from socratic.core import machine
from socratic.core.machine import threads_within_cores, usable_cores


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
