"""Loading GGUF files into llama.cpp without its repacked weight buffers on CPUs with AMX.

llama.cpp copies quantised weights (Q4_0, Q4_1, Q4_K, Q8_0, ...) into "extra" buffers laid out for
the CPU's fastest kernels. On CPUs with AMX (Intel Sapphire Rapids and later) that is an AMX buffer
whose matrix product segfaults (ggml-org/llama.cpp#20824; seen on this project's CI machines with
SmolLM2's Q4_1 file and Q8_0 students). llama.cpp's own tools have `--no-repack` for this;
llama-cpp-python's `Llama` does not expose it, so `without_repacking()` turns it off for every
`Llama` created inside the block, and `model_params()` for the low-level API. Elsewhere nothing
changes: repacking is fast and safe on CPUs without AMX.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator


@functools.cache
def cpu_has_amx() -> bool:
    import llama_cpp

    return "AMX_INT8 = 1" in llama_cpp.llama_print_system_info().decode(errors="replace")


def model_params():
    """`llama_model_default_params()`, without repacked buffers where the CPU has AMX."""
    from llama_cpp import llama_cpp as low

    params = low.llama_model_default_params()
    if cpu_has_amx():
        params.use_extra_bufts = False
    return params


@contextlib.contextmanager
def without_repacking() -> Iterator[None]:
    """Inside the block, `llama_cpp.Llama(...)` loads weights as `model_params()` does."""
    from llama_cpp import llama_cpp as low

    if not cpu_has_amx():
        yield
        return
    original = low.llama_model_default_params

    def params():
        found = original()
        found.use_extra_bufts = False
        return found

    low.llama_model_default_params = params  # `Llama.__init__` looks it up on this module at call time
    try:
        yield
    finally:
        low.llama_model_default_params = original


def serve() -> None:
    """`python -m socratic.llamacpp.buffers --model ...`: llama-cpp-python's OpenAI server, loaded safely."""
    from llama_cpp.server.__main__ import main

    with without_repacking():
        main()


if __name__ == "__main__":
    serve()
