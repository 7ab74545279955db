"""A stage in a process of its own: its result, its errors and its interruption come back as the parent's,
and the memory it held is the child's, not the parent's."""

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from socratic.core.errors import RecordError, SocraticError
from socratic.core.processes import run_in_own_process, terminate_as_interrupt


# The stages: module-level, so that the stage's process (forked or spawned) finds them by name.
def _hold_memory_and_answer(megabytes: int) -> tuple[int, int, int]:
    block = bytearray(megabytes * 2**20)  # touched: bytearray fills it with zeros
    logging.getLogger("socratic.test").warning("child logging %d MB", len(block) // 2**20)
    return os.getpid(), os.getpgid(0), len(block)


def _fail_on_a_bad_row(path: str) -> None:
    raise RecordError(path, 3, "no 'question'")


def _crash() -> None:
    raise ZeroDivisionError("a bug in the stage")


def _killed() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _save_when_interrupted(folder: str) -> None:
    Path(folder, "started").touch()
    try:
        time.sleep(60)
    except KeyboardInterrupt:
        Path(folder, "saved").touch()  # what a stage saves before it ends
        raise


def _what_the_stage_starts_with(variable: str) -> tuple[bool, str | None, str]:
    print("stage output", flush=True)
    print("stage errors", file=sys.stderr, flush=True)
    return "torch" in sys.modules, os.environ.get(variable), os.getcwd()


def _rss_megabytes() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def test_the_result_comes_back_and_the_memory_stays_in_the_child(capfd):
    logging.basicConfig(level=logging.WARNING)
    before = _rss_megabytes() if os.path.exists("/proc/self/status") else None
    pid, group, size = run_in_own_process(_hold_memory_and_answer, 200)
    assert size == 200 * 2**20
    assert pid != os.getpid() and group == pid, "its own process, in its own process group"
    assert "socratic: WARNING: child logging 200 MB" in capfd.readouterr().err, "logged as socratic logs"
    if before is not None:
        assert _rss_megabytes() - before < 50, "the 200 MB were the child's"


def test_an_error_is_the_same_one_line_and_a_crash_keeps_its_traceback(tmp_path):
    with pytest.raises(SocraticError, match=r"rows\.jsonl:3: no 'question'"):
        run_in_own_process(_fail_on_a_bad_row, str(tmp_path / "rows.jsonl"))
    with pytest.raises(RuntimeError, match=r"(?s)train cot failed in its own process:.*ZeroDivisionError: a bug"):
        run_in_own_process(_crash, name="train cot")
    with pytest.raises(SocraticError, match=r"solve cot: its process was killed by signal 9 .*out of memory"):
        run_in_own_process(_killed, name="solve cot")


def test_an_interruption_is_passed_on_once_and_the_child_saves_first(tmp_path):
    # The parent is interrupted (as Ctrl-C or `kill` would, through the CLI's handler) once the child
    # has started; the child gets it, saves, and the parent raises KeyboardInterrupt after it ended.
    def interrupt_once_started(signum, frame):
        if (tmp_path / "started").exists():
            raise KeyboardInterrupt
        signal.setitimer(signal.ITIMER_REAL, 0.2)

    previous = signal.signal(signal.SIGALRM, interrupt_once_started)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_in_own_process(_save_when_interrupted, str(tmp_path))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert (tmp_path / "saved").exists(), "the child saved its work before the parent went on"


def test_sigterm_during_a_command_is_an_interrupt_and_the_handler_comes_back():
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers live in the main thread")
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), terminate_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler runs at the next bytecode: this sleep is cut short
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_stage_starts_with_the_libraries_imported_and_the_parents_current_surroundings(tmp_path, monkeypatch, capfd):
    # The first stage starts the fork server, with this moment's environment, folder and output; what the
    # parent changes afterwards must still reach the next stage.
    with capfd.disabled():  # the server (if this starts it) takes the output the test does not capture
        run_in_own_process(_what_the_stage_starts_with, "SOCRATIC_TEST_MARK")
    monkeypatch.setenv("SOCRATIC_TEST_MARK", "set after the server started")
    monkeypatch.chdir(tmp_path)
    with_torch, mark, folder = run_in_own_process(_what_the_stage_starts_with, "SOCRATIC_TEST_MARK")
    assert mark == "set after the server started" and folder == str(tmp_path)
    printed = capfd.readouterr()
    assert printed.out == "stage output\n" and printed.err == "stage errors\n", "the parent's output of now"
    if sys.platform.startswith("linux"):
        assert with_torch, "forked from the server that imported the stages' libraries"
