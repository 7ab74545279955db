"""Issue 35, item 10: a llama-cpp-python built for another kind of CPU is one line before llama.cpp loads
(it died with SIGILL, silently), and Ctrl-C while llama.cpp loads a model stops the command."""

import ctypes
import signal
import subprocess
import sys

import pytest

from socratic.core.errors import SocraticError
from socratic.llamacpp import batch, build

# What this project's install reports on its 2-core AMD EPYC (GGML_NATIVE: the build machine's own sets).
NATIVE = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX_VNNI = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | AVX512 = 1 | "
    "AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | "
)
HASWELL = {"pni", "ssse3", "avx", "avx2", "f16c", "fma", "bmi2"}  # a CPU without AVX-512 (a login node, say)


def test_the_installed_build_fits_this_cpu():
    returncode, system_info = build.probe()
    assert returncode == 0 and "AVX" in system_info
    build.check_build()
    done = subprocess.run([sys.executable, "-m", "socratic.llamacpp.build"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("llama.cpp build: fits this CPU ("), done


def test_a_build_for_instruction_sets_this_cpu_lacks_is_named_with_what_to_do():
    found = build.problem(0, NATIVE, HASWELL)
    assert found.startswith(
        "llama-cpp-python was built for a CPU with AVX512, AVX512_BF16, AVX512_VBMI, AVX512_VNNI, AVX_VNNI, "
        "which this CPU lacks (it would crash with SIGILL): reinstall it for this machine: pip install --no-cache-dir"
    )
    assert (
        build.problem(0, NATIVE, HASWELL | {"avx512f", "avx512vbmi", "avx512_vnni", "avx512_bf16", "avx_vnni"}) is None
    )
    # A build of CPU variants chosen at run time reports the variant it loaded: what this CPU has.
    assert build.problem(0, "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | ", HASWELL) is None


def test_a_library_that_crashes_here_is_named_and_anything_else_is_left_to_the_loader():
    assert "it crashed here with SIGILL" in build.problem(-signal.SIGILL, "", HASWELL)
    assert build.problem(1, "", HASWELL) is None  # not a CPU mismatch: llama.cpp says what it is
    assert build.problem(0, NATIVE, None) is None  # no flags to compare (not x86 Linux)


def test_cpu_flags_are_read_from_proc_cpuinfo_text():
    text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu pni avx2 avx512f\n\nprocessor\t: 1\n"
    assert build.cpu_flags(text) == {"fpu", "pni", "avx2", "avx512f"}
    assert build.cpu_flags("Processor\t: AArch64\nFeatures\t: fp asimd\n") is None


def test_the_check_stops_the_engine_before_llama_cpp_loads(tiny_gguf, monkeypatch):
    monkeypatch.setattr(build, "probe", lambda: (-signal.SIGILL, ""))
    with pytest.raises(SocraticError, match="built for another kind of CPU"):
        batch.LlamaBatch(tiny_gguf, threads=1, batch_size=1)


def test_ctrl_c_while_llama_cpp_loads_stops_the_load(tiny_gguf, monkeypatch):
    """The interrupt arrives while llama.cpp is inside the load, calling back into Python: it used to
    be printed as "Exception ignored on calling ctypes callback function" and lost."""
    import llama_cpp

    real = llama_cpp.llama_model_load_from_file
    calls = []

    def load_with_ctrl_c(path, params):
        # What llama.cpp calls back as it loads (copied: the field itself is about to be replaced).
        address = ctypes.cast(params.progress_callback, ctypes.c_void_p).value
        asks = llama_cpp.llama_progress_callback(address)

        def progress(value, user_data):
            signal.raise_signal(signal.SIGINT)  # Ctrl-C, handled inside the ctypes callback
            calls.append(bool(asks(value, user_data)))
            return calls[-1]

        params.progress_callback = callback = llama_cpp.llama_progress_callback(progress)
        try:
            return real(path, params)
        finally:
            del callback

    monkeypatch.setattr(llama_cpp, "llama_model_load_from_file", load_with_ctrl_c)
    # As in a command run from a shell (a pytest-xdist worker ignores SIGINT, and then so does the load).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            batch.LlamaBatch(tiny_gguf, threads=1, batch_size=1)
        assert calls == [False]  # the load was told to stop at the first callback
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C raises again afterwards
    finally:
        signal.signal(signal.SIGINT, previous)
