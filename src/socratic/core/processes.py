"""A stage in a process of its own, so that everything it held goes back to the system when it ends.

`socratic run` trains and solves four students one after another. In one process each stage started
above the last one's peak (2.37 → 2.77 → 2.99 GiB between stages of the demo, and 4.44 GiB at the
third student's training against 3.71 GiB for the same training alone): glibc keeps freed blocks
for reuse, libraries keep caches, and `malloc_trim` returns only part of it. A process that ends
returns all of it, so the run's peak is one stage's peak.

The stage's process is forked from a *fork server*, a clean process that Python's multiprocessing
starts once, at the first stage, and that imports the libraries the stages use (torch, transformers,
TRL, llama.cpp: ~5 s and ~450 MB) before it forks anything. A stage then starts with them already
in memory, shared with the server page by page until it writes them, instead of importing them
again in a spawned interpreter of its own. The server has run no Python thread and computed nothing
(numpy's OpenBLAS and pyarrow's jemalloc keep an idle thread each, which their fork handlers
re-create), so a fork of it is safe, where a fork of `socratic run` itself (whose torch or llama.cpp
threads have run) may deadlock; and it holds nothing of the stages before. Elsewhere than on Linux
(macOS, whose system libraries are not safe to fork once loaded; Windows) the stage is spawned.
Each stage gets the parent's current environment, working folder and module path (the server's
are those of the moment it started).

The stage writes to the same terminal, logs with the parent's settings, and its errors come back as
the parent's: a `SocraticError` as the same one line, an interruption as `KeyboardInterrupt`, a
crash with its traceback. The child has its own process group, so a Ctrl-C reaches the parent alone,
which passes it on once (SIGTERM, which the child turns into KeyboardInterrupt as the CLI does) and
waits for the child to save what it had; and the child is ended if the parent dies (the server ends
when the parent does, and the child when the server does).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing import reduction
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from socratic.core import console
from socratic.core.errors import SocraticError
from socratic.core.machine import c_library

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>: the signal a process gets when its parent ends


def _context() -> multiprocessing.context.BaseContext:
    """The fork server that has imported the stages' libraries (`core.preload`), on Linux; elsewhere a
    spawned interpreter (macOS' system libraries are not safe to fork once loaded; Windows has no fork)."""
    if not sys.platform.startswith("linux"):
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["socratic.core.preload"])  # read when the server starts: the first stage
    return context


class _InheritedFd:
    """One of the parent's file descriptors as the child receives it: a fork server's children would
    otherwise write to the terminal (or the file) the server was started with, not the parent's current one."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self):  # pickled while the child starts, so multiprocessing passes the descriptor along
        return (_received_fd, (reduction.DupFd(self.fd),))


def _received_fd(duplicate: Any) -> int:
    return duplicate.detach()


@dataclass(frozen=True)
class _Surroundings:
    """What the parent set up that the child must share: its output (descriptors, log level, the libraries
    silenced or not) and its environment, which a fork server took once, when it started."""

    log_level: int
    quiet: bool
    environment: dict[str, str]
    stdout: _InheritedFd | int
    stderr: _InheritedFd | int

    @classmethod
    def of_this_process(cls) -> _Surroundings:
        return cls(
            logging.getLogger().getEffectiveLevel(),
            console.libraries_are_quiet(),
            dict(os.environ),
            _InheritedFd(1),
            _InheritedFd(2),
        )

    def apply(self) -> None:
        for fd, received in ((1, self.stdout), (2, self.stderr)):
            assert isinstance(received, int)  # unpickled: the descriptor passed along
            if received != fd:  # a spawned child already has the parent's own at 1 and 2
                os.dup2(received, fd)
                os.close(received)
        os.environ.clear()
        os.environ.update(self.environment)
        logging.basicConfig(level=self.log_level, format=console.LOG_FORMAT)
        console.quiet_libraries(verbose=not self.quiet)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Inside the block `kill PID` (SIGTERM) stops a command as Ctrl-C does, so the work in flight is
    saved first; the previous handler comes back after it (`main` may run inside another program).

    A command a script starts in the background (`nohup socratic run ... &`) ignores SIGINT, so TERM
    is how it is stopped; without this it would die at once and lose the replies being decoded."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():  # only the main thread has handlers
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_in_own_process(function: Callable[..., T], *args: Any, name: str = "stage") -> T:
    """`function(*args)` in a process of its own; its result, or its error raised here.

    `function` and its arguments must be picklable (a module-level function and dataclass configs);
    `name` names the stage in the one line said when the process dies without a word (killed)."""
    context = _context()
    receive, send = context.Pipe(duplex=False)
    here = _Surroundings.of_this_process()
    child = context.Process(target=_child, args=(send, here, function, args), name=name)
    child.start()
    send.close()  # the child holds the only sending end: its exit ends `recv` with EOFError
    try:
        outcome = _receive(receive)
    except KeyboardInterrupt:
        _interrupt(child)
        raise
    finally:
        receive.close()
    child.join()
    return _unpack(outcome, child.exitcode, name)


def _receive(receive: Connection) -> tuple[str, Any] | None:
    try:
        return receive.recv()
    except EOFError:  # the child died before it could say anything
        return None


def _interrupt(child: multiprocessing.process.BaseProcess) -> None:
    """Pass the parent's interruption to the child once, then wait for it to save its work and end."""
    if child.is_alive() and child.pid is not None:
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.kill(child.pid, signal.SIGTERM)
    while True:
        try:
            child.join()
            return
        except KeyboardInterrupt:  # a second Ctrl-C while the child saves: still wait, it is ending
            continue


def _unpack(outcome: tuple[str, Any] | None, exitcode: int | None, name: str) -> Any:
    if outcome is None:
        how = f"was killed by signal {-exitcode}" if exitcode and exitcode < 0 else f"ended with status {exitcode}"
        hint = " (out of memory? `dmesg` says)" if exitcode == -signal.SIGKILL else ""
        raise SocraticError(f"{name}: its process {how} before it finished{hint}; run the command again to resume")
    kind, value = outcome
    if kind == "result":
        return value
    if kind == "error":
        raise SocraticError(value)
    if kind == "interrupted":
        raise KeyboardInterrupt
    raise RuntimeError(f"{name} failed in its own process:\n{value}")


def _child(send: Connection, surroundings: _Surroundings, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)  # a Ctrl-C at the terminal reaches the parent alone, which passes it on once
    _end_with_the_parent()
    surroundings.apply()
    try:
        with terminate_as_interrupt():
            outcome: tuple[str, Any] = ("result", function(*args))
    except SocraticError as e:  # its message alone: a subclass's own constructor may not survive pickling
        outcome = ("error", str(e))
    except KeyboardInterrupt:
        outcome = ("interrupted", None)
    except BaseException:  # a bug: its traceback, for the parent to show
        outcome = ("crash", traceback.format_exc())
    send.send(outcome)
    send.close()


def _end_with_the_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent dies (the fork server, which ends when the
    command does; or the command that spawned it), so that a command killed with no chance to pass an
    interruption on leaves no orphaned training running; elsewhere nothing is asked."""
    prctl = getattr(c_library(), "prctl", None)  # Linux's alone
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
