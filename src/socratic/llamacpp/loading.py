"""Loading a llama.cpp model in this process: its logs silenced, Ctrl-C noted while native code runs
(not lost inside a ctypes callback), and one line for a file llama.cpp cannot read."""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from socratic.core.errors import SocraticError
from socratic.llamacpp.buffers import model_params


@functools.cache
def silent_llama_log():
    """A llama.cpp log callback that drops everything (kept alive for the process: llama.cpp holds it)."""
    import llama_cpp

    return llama_cpp.llama_log_callback(lambda level, text, user_data: None)


@contextlib.contextmanager
def interrupts_held() -> Iterator[threading.Event]:
    """Ctrl-C (or the CLI's SIGTERM) during the block is noted, not raised, then raised as
    KeyboardInterrupt when the block ends.

    While llama.cpp loads a model it calls back into Python (its log and progress callbacks), and
    the interrupt raised inside a ctypes callback is printed as "Exception ignored" and lost: the
    command went on and exited 0. The event lets a callback stop the native work early."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():  # only the main thread gets signals
        yield interrupted
        return

    def note(signum, frame):
        interrupted.set()

    held = [s for s in (signal.SIGINT, signal.SIGTERM) if callable(signal.getsignal(s))]  # those raising
    previous = {s: signal.signal(s, note) for s in held}
    try:
        yield interrupted
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if interrupted.is_set():
        raise KeyboardInterrupt


def load_model(lc, model: str | Path, interrupted: threading.Event):
    """llama.cpp's model from a GGUF file (no AMX repacking), loading stopped early by `interrupted`;
    a file llama.cpp cannot read is one line."""
    params = model_params()
    keep_loading = lc.llama_progress_callback(lambda progress, user_data: not interrupted.is_set())
    params.progress_callback = keep_loading  # (kept alive by this frame for the whole load)
    loaded = lc.llama_model_load_from_file(str(model).encode(), params)
    if interrupted.is_set():  # stopped part way (NULL), or the signal came as it finished
        if loaded:
            lc.llama_model_free(loaded)
        raise KeyboardInterrupt
    if not loaded:
        raise SocraticError(
            f"llama.cpp could not load {model}: not a GGUF file of a model it knows, or damaged (a file "
            "socratic exported is written again once deleted)"
        )
    return loaded
