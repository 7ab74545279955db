"""The libraries every stage imports, imported once by the fork server that `core.processes` starts.

A stage forked from that server begins with torch, transformers, TRL, PEFT, datasets and llama.cpp
in memory (shared with the server until it writes them) instead of importing them again: ~5 s for a
training and ~3 s for a solve on 2 cores, each time. Importing is all this does: nothing is computed
(oneDNN, OpenMP and llama.cpp start their threads at the first computation, in the stage), and the
only threads the imports start are numpy's OpenBLAS and pyarrow's jemalloc ones, idle, which those
libraries re-create after a fork; so forking the server stays safe. A library that is not installed
(an extra) is skipped: the stage that needs it says so itself.
"""

from __future__ import annotations

import importlib
import os

from socratic.core import console
from socratic.core.machine import freeze_live_objects

# (module, the names a stage takes from it: transformers and TRL import their parts when first asked)
LIBRARIES = (
    ("torch", ()),
    ("transformers", ("AutoModelForCausalLM", "AutoTokenizer", "PrinterCallback", "TrainerCallback")),
    ("datasets", ("Dataset",)),
    ("peft", ("LoraConfig",)),
    ("trl", ("SFTConfig", "SFTTrainer")),
    ("llama_cpp", ()),
)


def import_libraries() -> list[str]:
    """Import what the stages use; return the names of the libraries imported."""
    if os.environ.get(console.QUIET_SWITCH) == "1":  # their import-time warnings, as the stages silence them
        console.quiet_libraries(verbose=False)
    imported = []
    for name, parts in LIBRARIES:
        try:
            module = importlib.import_module(name)
            for part in parts:
                getattr(module, part)
        except Exception:  # not installed, or broken: the stage that needs it says so, the server must start
            continue
        imported.append(name)
    # The collector of a forked stage would write to every object here to walk it, copying the pages it
    # shares with the server; frozen, the libraries' objects are left out of its walks.
    freeze_live_objects()
    return imported


import_libraries()
