"""The training set of one role: the chains read, repeats dropped, the problems they belong to found, each
chain turned into (text, trained) pieces by `formats.segments` and tokenized with a mask of trained tokens."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from socratic.core.errors import RecordError, SocraticError
from socratic.core.jsonl import read_jsonl
from socratic.core.records import Chain, Problem
from socratic.tasks import BENCHMARKS, load_task
from socratic.tasks.options import DataOptions
from socratic.text import formats
from socratic.training.config import TrainConfig

log = logging.getLogger(__name__)


def load_pieces(config: TrainConfig, role: str) -> tuple[list[list[tuple[str, bool]]], str]:
    """The training text of `role`, one list of (text, trained) pieces per chain (`formats.segments`),
    and a hash of that text."""
    path = Path(config.chains)
    if not path.is_file():
        raise SocraticError(f"chains file not found: {path} (write one with `socratic annotate`)")
    chains = _distinct([c for c in read_jsonl(path, Chain) if c.correct is not False], path)
    if not chains:
        raise SocraticError(f"{path}: no correct chains to train on")
    problems = _problems_for(chains, config.data, path)
    wanted = set(config.data.select(list(dict.fromkeys(c.problem_id for c in chains))))  # --offset, --limit
    chains = [c for c in chains if c.problem_id in wanted]
    if role in ("unified", "qg", "qa") and any(c.style != "socratic" for c in chains):
        raise SocraticError(
            f"role '{role}' needs socratic chains (with subquestions); {path} has "
            f"{sum(c.style != 'socratic' for c in chains)} of another style"
        )
    pieces = [formats.segments(role, problems[c.problem_id].question, c.steps, c.final_answer) for c in chains]
    digest = hashlib.sha256("\n".join("\x00".join(t for t, _ in p) for p in pieces).encode()).hexdigest()[:16]
    return pieces, digest


def _distinct(chains: list[Chain], path: Path) -> list[Chain]:
    """The chains without repeats of the same steps for the same problem, which would be trained twice."""
    seen: set[tuple[str, tuple, str]] = set()
    kept = []
    for chain in chains:
        key = (chain.problem_id, chain.steps, chain.final_answer)
        if key not in seen:
            seen.add(key)
            kept.append(chain)
    if len(kept) < len(chains):
        log.warning("%s: %d repeated chains dropped (same problem, steps and answer)", path, len(chains) - len(kept))
    return kept


def tokenize_pieces(tokenizer: Any, pieces: Sequence[tuple[str, bool]]) -> dict[str, list[int]]:
    """Token ids of the whole text and a mask of the trained tokens, plus end-of-sequence.

    The text is tokenized in one go, as `solve` tokenizes a prompt, and a token is trained when its
    first character lies in a trained piece. End-of-sequence follows the last piece, trained with it.
    """
    text = "".join(t for t, _ in pieces)
    trained_chars = [flag for t, flag in pieces for _ in t]
    encoded = tokenizer(text, return_offsets_mapping=True)
    mask = [int(start < len(text) and end > start and trained_chars[start]) for start, end in encoded["offset_mapping"]]
    return {
        "input_ids": [*encoded["input_ids"], tokenizer.eos_token_id],
        "completion_mask": [*mask, int(pieces[-1][1])],
    }


def _problems_for(chains: Sequence[Chain], data: DataOptions, path: Path) -> dict[str, Problem]:
    """Problems by id: from --dataset (with its field options) when given, else from the benchmark and
    split that each chain id names ("gsm8k/train/17")."""
    sources: set[tuple[str, str]] = set()
    for number, chain in enumerate(chains, start=1):
        parts = chain.problem_id.split("/", 2)
        if len(parts) != 3 or not all(parts):
            raise RecordError(path, number, "expected an id like <dataset>/<split>/<n>", "problem_id", unit="chain")
        sources.add((parts[0], parts[1]))
    problems: dict[str, Problem] = {}
    for name, split in sorted(sources):
        if data.dataset is None and name not in BENCHMARKS:
            raise SocraticError(
                f"{path}: chains of '{name}', which is not a shipped benchmark: give --dataset with the file "
                "they came from (and its field options)"
            )
        task = data.task() if data.dataset else load_task(name)
        wanted = data.split_of(task, split)
        problems.update((p.id, p) for p in task.load(wanted))
    missing = [c.problem_id for c in chains if c.problem_id not in problems]
    if missing:
        raise SocraticError(
            f"{path}: {len(missing)} chains name problems that the dataset does not have (first: {missing[0]})"
        )
    return problems
