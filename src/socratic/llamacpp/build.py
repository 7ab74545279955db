"""Whether the installed llama-cpp-python can run on this CPU, checked before llama.cpp loads a model.

    python -m socratic.llamacpp.build        # "llama.cpp build: fits this CPU (AVX2, AVX512, ...)" or why not

pip builds llama-cpp-python from source, and llama.cpp's default (GGML_NATIVE=ON) compiles its CPU
kernels for the CPU it is built on: every instruction set that CPU has is required (the build here
reports `AVX512_BF16 = 1`). pip caches that wheel, so the same cache on another kind of machine (a
cluster's login and compute nodes; a development machine and CI) installs a library that dies with
SIGILL, with no message, at the first kernel it runs. The check, once per process, in a child
process (so that a build that cannot even start here crashes there, not here): load the library
and read `llama_print_system_info()`, which lists the instruction sets it was compiled for, then
compare them with the CPU's flags in /proc/cpuinfo. A build made with GGML_BACKEND_DL and
GGML_CPU_ALL_VARIANTS loads the variant this CPU can run, so it reports only what the CPU has.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

from socratic.core.errors import SocraticError

# The build's names (llama_print_system_info) -> the CPU's flag (/proc/cpuinfo) that each needs.
NEEDS = {
    "SSE3": "pni",
    "SSSE3": "ssse3",
    "AVX": "avx",
    "AVX_VNNI": "avx_vnni",
    "AVX2": "avx2",
    "F16C": "f16c",
    "FMA": "fma",
    "BMI2": "bmi2",
    "AVX512": "avx512f",
    "AVX512_VBMI": "avx512vbmi",
    "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16",
    "AMX_INT8": "amx_int8",
}
REBUILD = (
    "reinstall it for this machine: pip install --no-cache-dir --force-reinstall --no-deps llama-cpp-python "
    "(pip's cache holds a wheel built on another kind of CPU)"
)
_PROBE = """
import ctypes, sys
library = ctypes.CDLL(sys.argv[1])
library.llama_print_system_info.restype = ctypes.c_char_p
print(library.llama_print_system_info().decode(errors="replace"))
"""


def build_features(system_info: str) -> set[str]:
    """The instruction sets a llama.cpp build says it uses: "AVX2 = 1 | AVX512 = 1 | ..." -> {"AVX2", ...}."""
    return {name for name, on in re.findall(r"([A-Z0-9_]+) = (\d+)", system_info) if on != "0"}


def cpu_flags(cpuinfo: str) -> set[str] | None:
    """The flags of the first CPU in /proc/cpuinfo's text, or None where it lists none (not x86)."""
    found = re.search(r"^flags\s*:(.*)$", cpuinfo, re.MULTILINE)
    return set(found.group(1).split()) if found else None


def mismatch(system_info: str, flags: set[str]) -> list[str]:
    """The build's instruction sets this CPU lacks, by the build's names."""
    return sorted(name for name in build_features(system_info) if name in NEEDS and NEEDS[name] not in flags)


def problem(returncode: int, system_info: str, flags: set[str] | None) -> str | None:
    """What is wrong with the build on this CPU, in one line, or None: from the probe's exit status
    and output and the CPU's flags."""
    if returncode == -4:  # SIGILL: the library itself ran an instruction this CPU does not have
        return f"llama-cpp-python's library was built for another kind of CPU (it crashed here with SIGILL): {REBUILD}"
    if returncode != 0 or flags is None:
        return None  # not a CPU mismatch; loading the model will say what it is
    missing = mismatch(system_info, flags)
    if missing:
        return (
            f"llama-cpp-python was built for a CPU with {', '.join(missing)}, which this CPU lacks (it would "
            f"crash with SIGILL): {REBUILD}"
        )
    return None


def library_path() -> Path | None:
    """libllama.so of the installed llama-cpp-python (None if it is elsewhere, e.g. LLAMA_CPP_LIB_PATH)."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = Path(next(iter(spec.submodule_search_locations))) / "lib" / "libllama.so"
    return found if found.is_file() else None


@functools.cache
def probe() -> tuple[int, str]:
    """(exit status, system info) of a child process that loads the library (-4: it died of SIGILL)."""
    library = library_path()
    if library is None or not sys.platform.startswith("linux"):
        return 0, ""
    done = subprocess.run(
        [sys.executable, "-I", "-c", _PROBE, str(library)], capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stdout


def check_build() -> None:
    """Stop with one line if the installed llama.cpp cannot run on this CPU; see the module docstring."""
    returncode, system_info = probe()
    try:
        flags = cpu_flags(Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace"))
    except OSError:
        flags = None
    found = problem(returncode, system_info, flags)
    if found is not None:
        raise SocraticError(found)


if __name__ == "__main__":
    try:
        check_build()
    except SocraticError as e:
        sys.exit(f"llama.cpp build: {e}")
    listed = ", ".join(sorted(build_features(probe()[1]) & set(NEEDS))) or "no instruction sets listed"
    print(f"llama.cpp build: fits this CPU ({listed})")
