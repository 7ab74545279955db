"""What the commands show on the terminal: their own progress bars and summary lines, not the libraries',
and text that cannot drive the terminal (`terminal_safe`).

transformers, datasets, TRL, huggingface_hub and llama.cpp each print progress bars ("Loading
weights", "Writing model shards", tokenizing, packing) and advice meant for their own users, which
would bury the one bar and the one summary line of each stage. They are silenced here, before any
of them is imported, unless the user asks for everything with `socratic -v`.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import re
import warnings

# Read by `core.preload`, which imports the libraries in a process of its own.
QUIET_SWITCH = "SOCRATIC_QUIET_LIBRARIES"

# Environment switches each library reads when it is first imported.
QUIET_ENVIRONMENT = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # also transformers' own bars ("Loading weights", shards)
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",  # datasets.map: TRL's tokenizing and packing
    "TRANSFORMERS_VERBOSITY": "error",
    "DATASETS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TOKENIZERS_PARALLELISM": "false",  # the fork warning of the tokenizers library
    QUIET_SWITCH: "1",  # socratic's own: the fork server of `core.processes` silences them before importing
}

# Warnings the libraries raise about their own internals, which a socratic user cannot act on.
KNOWN_WARNINGS = (
    (FutureWarning, r"transformers|trl|peft|accelerate|torch|datasets"),
    (UserWarning, r"trl|peft|accelerate|torch\.utils\.checkpoint|transformers"),
    (DeprecationWarning, r"transformers|trl|peft|accelerate|torch|datasets|gguf"),
)
NOISY_LOGGERS = ("transformers", "datasets", "trl", "peft", "accelerate", "huggingface_hub", "gguf", "httpx")

# How socratic's own log lines look: "socratic: WARNING: resuming from ...".
LOG_FORMAT = "socratic: %(levelname)s: %(message)s"

_quieted = False  # whether `quiet_libraries` silenced the libraries in this process


def quiet_libraries(verbose: bool) -> None:
    """Silence the libraries' progress bars, advice and known warnings (all kept with `verbose`)."""
    global _quieted
    if verbose:
        return
    _quieted = True
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    for category, modules in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", category=category, module=modules)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def libraries_are_quiet() -> bool:
    """Whether this process silenced the libraries (`quiet_libraries` without `verbose`): a stage run in a
    process of its own does the same."""
    return _quieted


# Characters that make a terminal act instead of print: C0 controls but tab and newline (ESC starts
# colour, cursor and title sequences; CR overwrites the line), DEL, C1 controls (0x9b is a one-byte
# CSI), and the bidirectional overrides that reorder what is shown.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """`text` with every character that could drive a terminal shown as its escape (`\\x1b`, `\\u202e`):
    what a model writes, or a file name in an error, is printed, never obeyed."""
    return _CONTROLS.sub(lambda m: ascii(m.group())[1:-1], text)


def quiet_bar_of(module: str) -> None:
    """Silence the tqdm bar a library module draws with no switch of its own (transformers' GGUF loader,
    "Converting and de-quantizing GGUF tensors"), when the libraries' bars are silenced (not with -v)."""
    if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") != "1":
        return
    loaded = importlib.import_module(module)
    if not isinstance(loaded.tqdm, functools.partial):  # (once)
        loaded.tqdm = functools.partial(loaded.tqdm, disable=True)
