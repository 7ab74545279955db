"""Locks between processes: a held lock stops a second process with its one line, leaves no file behind,
and is never taken on an orphaned file."""

import os
import subprocess
import sys

import pytest

from socratic.core import locks
from socratic.core.errors import SocraticError
from socratic.core.locks import holding_lock

_HOLD_LOCK = """
import sys
from socratic.core.locks import holding_lock
with holding_lock(sys.argv[1], "busy: trained elsewhere"):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_a_held_lock_stops_a_second_process_with_its_message_and_is_removed_after(tmp_path):
    lock = tmp_path / "student" / "checkpoints.lock"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    other = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert other.stdout.readline() == "locked\n"
        with pytest.raises(SocraticError, match=r"^busy here$"), holding_lock(lock, "busy here"):
            pass
    finally:
        other.communicate("\n", timeout=10)
    assert other.returncode == 0
    assert not lock.exists()  # no file left behind
    with holding_lock(lock, "busy here"):  # released: ours now
        assert lock.exists()
    assert not lock.exists()


def test_a_lock_file_removed_between_opening_and_locking_is_opened_again(tmp_path, monkeypatch):
    # The holder removes the file as it lets go; an opener that got the old file just before must not
    # take that orphan's lock (a third process would lock the new file beside it) but open it again.
    lock = tmp_path / "checkpoints.lock"
    real_lock, calls = locks.lock_exclusively, []

    def holder_lets_go_first(file, path, busy=None, wait=False):
        calls.append(path)
        if len(calls) == 1:
            path.unlink()
        real_lock(file, path, busy, wait)

    monkeypatch.setattr(locks, "lock_exclusively", holder_lets_go_first)
    with holding_lock(lock, "busy"):
        assert len(calls) == 2 and lock.exists()
        monkeypatch.setattr(locks, "lock_exclusively", real_lock)
        with pytest.raises(SocraticError, match=r"^busy$"), holding_lock(lock, "busy"):  # the new file is held
            pass
