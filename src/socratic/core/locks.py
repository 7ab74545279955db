"""Locks between processes, one implementation: the kernel's advisory file locks (flock), which a killed
holder never leaves behind, and a way to see who holds one without taking it.

- `holding_lock`: the lock file of a piece of work (a training run's checkpoints, a run folder, a model
  being prepared) for a `with` block: a second process stops at once with one line, or waits its turn.
- `lock_exclusively`: the same lock on a file already open (an appended JSONL file).
- `held_now`: whether any process holds a lock on a path at this moment (`socratic run --status`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from socratic.core.errors import SocraticError, cannot_write

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def holding_lock(path: str | Path, busy: str | None = None, wait: bool = False) -> Iterator[None]:
    """Hold the lock file `path` for the `with` block, for work that is not one appended file (a
    training run's checkpoints): a second process stops at once with `busy` as its error, or with
    `wait` waits its turn (for a moment's work, such as rewriting a shared record).

    The lock is the kernel's (flock), so a killed holder never leaves a stale one. The file is
    removed on the way out; a process that opened it just before then finds it gone once it has
    the lock (another inode than the path's), and takes the new file's lock instead.
    """
    path = Path(path)
    file = None
    while file is None:
        file = _open_locked(path, busy, wait)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # Windows cannot remove an open file: there it stays, harmless
            path.unlink(missing_ok=True)  # while still locked, so no one holds a lock on a file left behind
        file.close()


def _open_locked(path: Path, busy: str | None, wait: bool) -> IO[str] | None:
    """`path` opened and locked, or None if it was removed meanwhile (then try again)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (the lock lasts as long as the file is open)
    except OSError as e:
        raise cannot_write(path, e) from None
    try:
        lock_exclusively(file, path, busy, wait)
    except BaseException:
        file.close()
        raise
    if _same_file(file, path):
        return file
    file.close()
    return None


def _same_file(file: IO[str], path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(file.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


def lock_exclusively(file: IO[str], path: Path, busy: str | None = None, wait: bool = False) -> None:
    if fcntl is None:  # not POSIX: no advisory locks to take
        return
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SocraticError(
            busy
            or f"{path} is being written by another process (a second run with the same output?): "
            "wait for it to finish or write elsewhere"
        ) from None
    except OSError as e:  # a file system without locks (some network mounts): write unprotected
        log.warning("%s: cannot lock (%s); make sure no other process writes it", path, e.strerror)


def held_now(path: Path) -> bool:
    """Whether a process holds a lock on `path` at this moment, from the kernel's table of locks
    (Linux; elsewhere False). Trying the lock instead could make a run that takes it that instant fail."""
    try:
        stat = path.stat()
        table = Path("/proc/locks").read_text(encoding="ascii")
    except OSError:
        return False
    device = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    return any(device in line.split() for line in table.splitlines())
