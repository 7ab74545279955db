"""A user's own problems: a JSONL, JSON or CSV file, or a Hugging Face `datasets` folder or hub id.

    socratic data show --dataset my_problems.jsonl --question-field prompt --answer-field target
    socratic data stats --dataset hf:./my_saved_dataset

Every row needs a question and a gold answer; their field names are configurable (`FileFields`).
Ids come from `--id-field` when given (a "/" in them is escaped as "%2F", see `escape_id`), else
from the row's position, so they stay stable as long as the file does. The answer kind (number,
yes/no or free text, which decides how a model's answer is read) is inferred from the gold answers
unless given. A bad row stops loading with its file, line and field: nothing is skipped silently,
and no file, whatever its bytes, gets further than that (not UTF-8, bad JSON, NaN or 1e400 gold
answers, a CSV field over the csv module's limit). `hf:` needs the optional `datasets` package
(`pip install socratic[hf]`) and a hub id needs a network; a local folder written by
`Dataset.save_to_disk` needs neither.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socratic.core.errors import RecordError, SocraticError
from socratic.core.jsonl import json_array, json_lines, read_text
from socratic.core.records import FieldError, Problem
from socratic.tasks.base import Task, check_answer_kind
from socratic.text.answers import normalize_gold, normalize_number, normalize_yes_no

FILE_SUFFIXES = (".jsonl", ".json", ".csv")
HF_PREFIX = "hf:"
FILE_SPLIT = "all"  # a single file is one split


@dataclass(frozen=True)
class FileFields:
    """Where a user's file keeps each part of a problem."""

    question_field: str = field(default="question", metadata={"help": "your file: the field holding the problem"})
    answer_field: str = field(default="answer", metadata={"help": "your file: the field holding the gold answer"})
    id_field: str | None = field(
        default=None, metadata={"help": "your file: the field holding a unique row id (default: the row's position)"}
    )
    answer_kind: str = field(
        default="auto",
        metadata={
            "help": "how answers are compared: number, yesno, text, or auto (inferred from the gold answers)",
            "choices": ("auto", "number", "yesno", "text"),
        },
    )


def is_custom_dataset(dataset: str) -> bool:
    return dataset.startswith(HF_PREFIX) or dataset.lower().endswith(FILE_SUFFIXES)


def task_for_source(dataset: str, fields: FileFields) -> Task:
    """A `Task` over a user's file or HF dataset; rows are read (and checked) when a split is loaded."""
    if dataset.startswith(HF_PREFIX):
        return _hf_task(dataset.removeprefix(HF_PREFIX), fields)
    path = Path(dataset)
    if not path.is_file():
        raise SocraticError(f"dataset file not found: {path}")
    problems = _problems_from_rows(path.stem, FILE_SPLIT, _file_rows(path), fields, path)
    return Task(
        name=path.stem,
        description=f"user file {path}",
        splits=(FILE_SPLIT,),
        answer_kind=_answer_kind(fields.answer_kind, problems),
        loader=lambda split: problems,
    )


def _file_rows(path: Path) -> Iterator[tuple[int, str, Any]]:
    """(position, unit, row) for each row; position is the line (JSONL, CSV) or item (JSON) number.

    Whatever the bytes, reading ends in rows or a `RecordError`/`SocraticError` naming the file:
    text that is not UTF-8, bad JSON (NaN, 1e400, deep nesting included), a CSV field over the csv
    module's size limit.
    """
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        for number, row in json_lines(path):
            yield number, "line", row
    elif suffix == ".json":
        for number, row in json_array(path):
            yield number, "item", row
    else:
        yield from _csv_rows(path)


def _csv_rows(path: Path) -> Iterator[tuple[int, str, Any]]:
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    try:
        for row in reader:
            yield reader.reader.line_num, "line", row
    except csv.Error as e:  # a field over csv.field_size_limit(), a NUL byte, a stray quote
        raise RecordError(path, reader.reader.line_num, f"not valid CSV ({e})") from None


def _problems_from_rows(
    name: str, split: str, rows: Iterator[tuple[int, str, Any]], fields: FileFields, source: object
) -> list[Problem]:
    problems, first_seen = [], {}
    for position, (number, unit, row) in enumerate(rows):
        try:
            native_id, problem = _problem_from_row(name, split, position, row, fields)
            if native_id in first_seen:
                raise FieldError(
                    str(fields.id_field), f"duplicate id {native_id!r} (first at {unit} {first_seen[native_id]})"
                )
        except FieldError as e:
            field_name = None if e.field == "<row>" else e.field
            raise RecordError(str(source), number, e.reason, field=field_name, unit=unit) from None
        first_seen[native_id] = number
        problems.append(problem)
    if not problems:
        raise SocraticError(f"{source}: no problems found")
    return problems


def _problem_from_row(name: str, split: str, position: int, row: Any, fields: FileFields) -> tuple[str, Problem]:
    """The row's own id and its Problem, whose id is "<name>/<split>/<id with / and % escaped>"."""
    if not isinstance(row, Mapping):
        raise FieldError("<row>", f"expected an object, got {type(row).__name__}")
    question = _required(row, fields.question_field)
    answer = _required(row, fields.answer_field)
    if not isinstance(question, str) or not question.strip():
        raise FieldError(fields.question_field, "expected non-empty text")
    if not isinstance(answer, str | int | float | bool) or (isinstance(answer, str) and not answer.strip()):
        raise FieldError(fields.answer_field, f"expected a number, boolean or text, got {answer!r:.40}")
    try:
        gold = normalize_gold(answer)
    except ValueError as e:
        raise FieldError(fields.answer_field, str(e)) from None
    native_id = _native_id(row, fields.id_field) if fields.id_field else str(position)
    problem = Problem(id=f"{name}/{split}/{escape_id(native_id)}", dataset=name, question=question.strip(), answer=gold)
    return native_id, problem


def _native_id(row: Mapping[str, Any], id_field: str) -> str:
    value = _required(row, id_field)
    if not isinstance(value, str | int | float) or isinstance(value, bool) or not str(value).strip():
        raise FieldError(id_field, f"expected non-empty text or a number, got {value!r:.40}")
    return str(value)


def escape_id(native_id: str) -> str:
    """A row's id made safe as the last part of a problem id: "/" separates the parts of problem ids
    (evaluation reads the dataset from them), so "a/1" becomes "a%2F1" and "%" itself "%25"; two
    different ids never share an escape."""
    return native_id.replace("%", "%25").replace("/", "%2F")


def _required(row: Mapping[str, Any], name: str) -> Any:
    if name not in row or row[name] is None:
        known = ", ".join(sorted(map(str, row))[:8])
        raise FieldError(name, f"missing (the row has: {known})")
    return row[name]


def _answer_kind(requested: str, problems: list[Problem]) -> str:
    if requested != "auto":
        return check_answer_kind(requested)
    golds = [p.answer for p in problems]
    if all(normalize_number(a) is not None for a in golds):
        return "number"
    if all(normalize_yes_no(a) is not None for a in golds):
        return "yesno"
    return "text"


def _hf_task(source: str, fields: FileFields) -> Task:
    try:
        import datasets
    except ImportError:
        raise SocraticError("hf: datasets need the `datasets` package: pip install 'socratic[hf]'") from None
    name = Path(source).name or source
    try:
        loaded = datasets.load_from_disk(source) if Path(source).is_dir() else datasets.load_dataset(source)
    except (FileNotFoundError, ConnectionError, ValueError, OSError) as e:
        raise SocraticError(f"cannot load hf:{source}: {e}") from None
    splits = loaded if isinstance(loaded, datasets.DatasetDict) else {FILE_SPLIT: loaded}
    problems = {
        split: _problems_from_rows(
            name, split, ((i + 1, "row", row) for i, row in enumerate(rows)), fields, f"hf:{source}[{split}]"
        )
        for split, rows in splits.items()
    }
    return Task(
        name=name,
        description=f"Hugging Face dataset {source}",
        splits=tuple(problems),
        answer_kind=_answer_kind(fields.answer_kind, [p for ps in problems.values() for p in ps]),
        loader=lambda split: problems[split],
    )
