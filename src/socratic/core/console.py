"""What the commands show on the terminal: their own progress bars and summary lines, not the libraries'.

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
import warnings

# Environment switches each library reads when it is first imported.
QUIET_ENVIRONMENT = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # also transformers' own bars ("Loading weights", shards)
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",  # datasets.map: TRL's tokenizing and packing
    "TRANSFORMERS_VERBOSITY": "error",
    "DATASETS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TOKENIZERS_PARALLELISM": "false",  # the fork warning of the tokenizers library
}

# Warnings the libraries raise about their own internals, which a socratic user cannot act on.
KNOWN_WARNINGS = (
    (FutureWarning, r"transformers|trl|peft|accelerate|torch|datasets"),
    (UserWarning, r"trl|peft|accelerate|torch\.utils\.checkpoint|transformers"),
    (DeprecationWarning, r"transformers|trl|peft|accelerate|torch|datasets|gguf"),
)
NOISY_LOGGERS = ("transformers", "datasets", "trl", "peft", "accelerate", "huggingface_hub", "gguf", "httpx")


def quiet_libraries(verbose: bool) -> None:
    """Silence the libraries' progress bars, advice and known warnings (all kept with `verbose`)."""
    if verbose:
        return
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    for category, modules in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", category=category, module=modules)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def quiet_bar_of(module: str) -> None:
    """Silence the tqdm bar a library module draws with no switch of its own (transformers' GGUF loader,
    "Converting and de-quantizing GGUF tensors"), when the libraries' bars are silenced (not with -v)."""
    if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") != "1":
        return
    loaded = importlib.import_module(module)
    if not isinstance(loaded.tqdm, functools.partial):  # (once)
        loaded.tqdm = functools.partial(loaded.tqdm, disable=True)
