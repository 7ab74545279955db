"""The data options every command that reads problems shares: which dataset, which split, which rows,
and where a user's own file keeps each part of a problem.

    socratic annotate --dataset my.csv --question-field prompt --answer-field target ...
    socratic train    --dataset my.csv --question-field prompt --answer-field target ...
    socratic solve    --dataset my.csv --question-field prompt --answer-field target ...

Declared once, as a group of options inside each stage's config, so the commands cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from socratic.core.records import Problem
from socratic.tasks import BENCHMARKS, load_task
from socratic.tasks.base import Task
from socratic.tasks.custom import FileFields

DATASET_HELP = (
    "a benchmark (gsm8k, svamp, strategyqa), your own .jsonl/.json/.csv file, or hf:<datasets folder or hub id>"
)


@dataclass(frozen=True)
class DataOptions(FileFields):
    """Which problems a command reads; the field options (`FileFields`) say how to read a user's file."""

    dataset: str | None = field(
        default=None,
        metadata={
            "help": DATASET_HELP + " (default: gsm8k; train: the dataset the chain ids name, e.g. gsm8k/train/17)"
        },
    )
    split: str | None = field(
        default=None,
        metadata={"help": "which split (default: annotate and train use train, solve uses test; a file is one split)"},
    )
    limit: int | None = field(default=None, metadata={"help": "only the first N problems", "min": 1})
    offset: int = field(default=0, metadata={"help": "skip this many problems first", "min": 0})

    @property
    def fields(self) -> FileFields:
        return FileFields(self.question_field, self.answer_field, self.id_field, self.answer_kind)

    def task(self, default: str = "gsm8k") -> Task:
        return load_task(self.dataset or default, self.fields)

    def split_of(self, task: Task, preferred: str) -> str:
        """The split to read: --split, else `preferred` (train or test) when the task has it, else its only one."""
        if self.split is not None:
            return self.split
        return preferred if preferred in task.splits else task.default_split

    def settings(self, task: Task, split: str) -> dict[str, Any]:
        """Which problems, for a stage's resume record (`resume.claim`): the field options only count for
        a user's file."""
        fields = None if task.name in BENCHMARKS else dataclasses.asdict(self.fields)
        return {"problems": f"{task.name}/{split}", "fields": fields}

    def select(self, problems: list[Problem]) -> list[Problem]:
        """--offset, then --limit."""
        chosen = problems[self.offset :]
        return chosen if self.limit is None else chosen[: self.limit]

    def load(self, preferred_split: str) -> tuple[Task, str, list[Problem]]:
        """(the task, the split read, the selected problems)."""
        task = self.task()
        split = self.split_of(task, preferred_split)
        return task, split, self.select(task.load(split))
