"""The benchmarks: one module each (load, answer kind, extraction), and a user's own files.

    socratic data stats

`load_task("gsm8k")` returns a `Task`; `task.load("test")` returns its `Problem`s with stable ids.
A dataset argument is a benchmark name (gsm8k, svamp, strategyqa), a path to the user's own
`.jsonl` / `.json` / `.csv` file, or `hf:<local datasets directory or hub id>` (see `custom.py`).
Benchmarks ship inside the package (tasks/data/, gzip, with their MIT licences), so nothing is
downloaded.
"""

from __future__ import annotations

from socratic.core.errors import unknown_name
from socratic.tasks import gsm8k, strategyqa, svamp
from socratic.tasks.base import Task
from socratic.tasks.custom import FileFields, is_custom_dataset, task_for_source

BENCHMARKS: dict[str, Task] = {task.name: task for task in (gsm8k.TASK, svamp.TASK, strategyqa.TASK)}

__all__ = ["BENCHMARKS", "FileFields", "Task", "load_task"]


def load_task(dataset: str, fields: FileFields | None = None) -> Task:
    """The `Task` for a benchmark name, a local data file, or `hf:<dir or hub id>`."""
    if dataset in BENCHMARKS:
        return BENCHMARKS[dataset]
    if is_custom_dataset(dataset):
        return task_for_source(dataset, fields or FileFields())
    raise unknown_name("dataset", dataset, BENCHMARKS)
