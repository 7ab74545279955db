"""Chains a teacher wrote once, shipped inside the package: a run that needs no teacher installed.

    socratic annotate --dataset svamp --split train --limit 300 --teacher shipped --out runs/chains.jsonl

`socratic run` with no arguments trains on these (configs/default.toml). The files live in
socratic/teacher/chains/: `<dataset>-<style>.jsonl.gz` holds the kept `Chain`s as `socratic annotate`
wrote them, and `<dataset>-<style>.json` their provenance: the teacher, the hash of its prompt, the
date, the commit, the benchmark's licence and the commands that rebuild the file. Today there is one:
SVAMP's first 300 training problems, annotated by Qwen2.5-Coder-1.5B (231 kept chains):

    socratic annotate --config cpu-svamp --out runs/cpu-svamp/chains.jsonl
    python scripts/ship_chains.py runs/cpu-svamp/chains.jsonl

A problem without a shipped chain (the teacher got it wrong, or it was never asked) is rejected as
"no shipped chain", as a teacher's wrong reply would be.
"""

from __future__ import annotations

import gzip
import json
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from socratic.core.errors import SocraticError
from socratic.core.records import Chain, Problem, from_dict

NOT_SHIPPED = "no shipped chain"


def _folder() -> Traversable:
    return resources.files("socratic.teacher") / "chains"


def available() -> list[str]:
    """The shipped chain sets, as "<dataset>-<style>"."""
    return sorted(p.name.removesuffix(".jsonl.gz") for p in _folder().iterdir() if p.name.endswith(".jsonl.gz"))


def provenance(dataset: str, style: str) -> dict[str, Any]:
    """Where the shipped chains of `dataset` in `style` come from (teacher, prompt hash, date, licence)."""
    return json.loads((_folder() / f"{_name(dataset, style)}.json").read_text(encoding="utf-8"))


def load_chains(dataset: str, style: str) -> dict[str, list[Chain]]:
    """The shipped chains of `dataset` in `style`, by problem id."""
    found: dict[str, list[Chain]] = {}
    with (_folder() / f"{_name(dataset, style)}.jsonl.gz").open("rb") as raw, gzip.open(raw, "rt") as lines:
        for line in lines:
            chain = from_dict(Chain, json.loads(line))
            found.setdefault(chain.problem_id, []).append(chain)
    return found


def judged(problems: list[Problem], dataset: str, style: str) -> dict[str, list[tuple[int, Chain | str]]]:
    """Each problem's shipped chains, or NOT_SHIPPED: what `annotate` judges a teacher's replies into."""
    chains = load_chains(dataset, style)
    return {p.id: list(enumerate(chains.get(p.id, ()))) or [(0, NOT_SHIPPED)] for p in problems}


def teacher_name(dataset: str, style: str) -> str:
    """The teacher that wrote the shipped chains, as annotate names it: "shipped:<teacher model>"."""
    return f"shipped:{provenance(dataset, style)['teacher']['model']}"


def _name(dataset: str, style: str) -> str:
    name = f"{dataset}-{style}"
    if name not in available():
        raise SocraticError(
            f"no shipped {style} chains for '{dataset}' (shipped: {', '.join(available())}): "
            "annotate it with a teacher (--teacher llamacpp:qwen2.5-coder-1.5b, openai:<url>) or --teacher human"
        )
    return name
