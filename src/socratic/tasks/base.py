"""What every benchmark provides: its splits, how to load them, and how to read an answer."""

from __future__ import annotations

import functools
import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources

from socratic.core.errors import unknown_name
from socratic.core.records import Problem
from socratic.text import answers

ANSWER_KINDS = ("number", "yesno", "text")


@dataclass(frozen=True)
class Task:
    """A benchmark: `load(split)` gives its problems, `extract_answer(text)` reads a model's answer."""

    name: str
    description: str
    splits: tuple[str, ...]
    answer_kind: str  # "number" (GSM8K, SVAMP), "yesno" (StrategyQA) or "text" (exact match)
    loader: Callable[[str], list[Problem]]
    hub_id: str | None = None  # the dataset on the Hugging Face hub (a model card's `datasets`)

    @property
    def default_split(self) -> str:
        return "test" if "test" in self.splits else self.splits[0]

    def load(self, split: str, limit: int | None = None) -> list[Problem]:
        if split not in self.splits:
            raise unknown_name(f"split of {self.name}", split, self.splits)
        problems = self.loader(split)
        return problems if limit is None else problems[:limit]

    def extract_answer(self, text: str) -> str | None:
        """The answer in a model's text, by this task's answer kind; None when there is none."""
        if self.answer_kind == "number":
            return answers.extract_number(text)
        if self.answer_kind == "yesno":
            return answers.extract_yes_no(text)
        line = text.strip().splitlines()[-1] if text.strip() else ""
        return answers.normalize_answer(line) if line else None

    def is_correct(self, predicted: str | None, gold: str) -> bool:
        return answers.answers_match(predicted, gold)


def parsed_once(loader: Callable[[str], list[Problem]]) -> Callable[[str], list[Problem]]:
    """A shipped benchmark's loader that parses each split once per process.

    The shipped files never change while a process runs, and parsing is not free: GSM8K's 7,473
    training problems take ~0.7 s (each solution's steps and answer), paid by every training that
    looks its chains' problems up. Each call still gets a list of its own; the problems in it are
    frozen records, shared."""
    parsed = functools.cache(lambda split: tuple(loader(split)))

    @functools.wraps(loader)
    def load(split: str) -> list[Problem]:
        return list(parsed(split))

    return load


def shipped_lines(dataset: str, filename: str) -> Iterator[str]:
    """Stream the lines of a data file shipped in socratic/tasks/data/<dataset>/<filename>.gz."""
    path = resources.files("socratic.tasks") / "data" / dataset / f"{filename}.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        yield from lines


def check_answer_kind(kind: str) -> str:
    if kind not in ANSWER_KINDS:
        raise unknown_name("answer kind", kind, ANSWER_KINDS)
    return kind
