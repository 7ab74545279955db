"""The typed records passed between stages, and their JSON Lines files.

    socratic data show --dataset gsm8k --split test --limit 1 --json    # one Problem as JSON

Every stage reads and writes one record type, one JSON object a line:
  tasks/    -> Problem      annotate -> Chain      solve -> Prediction
Files are appended to as work is produced, so a killed process leaves at most one truncated last
line. `read_jsonl` skips that line with a warning (the work it held is redone on resume) and
`JsonlAppender` cuts it off before appending, so a resumed run never glues a new record onto it.
Any other malformed row is an error that names the file, the line and the field.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from socratic.errors import RecordError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """One step of a chain: a subquestion and its solution, or (CoT) a sentence with no question."""

    question: str
    answer: str


@dataclass(frozen=True)
class Problem:
    """A benchmark problem with its gold answer, normalised (see `answers.normalize_answer`)."""

    id: str  # stable across runs and machines, "<dataset>/<split>/<native id>", e.g. "gsm8k/test/17"
    dataset: str
    question: str
    answer: str
    facts: tuple[str, ...] = ()  # StrategyQA: the evidence sentences its annotators wrote
    decomposition: tuple[str, ...] = ()  # StrategyQA: the annotators' subquestions (no solutions)
    equation: str | None = None  # SVAMP: the equation that yields the answer
    human_steps: tuple[Step, ...] = ()  # GSM8K: the human Socratic subquestion/solution pairs
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chain:
    """One decomposition of one problem, by a teacher or a human."""

    problem_id: str
    style: str  # "socratic" (subquestion/solution pairs) or "cot" (steps with empty questions)
    steps: tuple[Step, ...]
    final_answer: str
    correct: bool | None  # final_answer equals the gold answer; None when unknown
    source: str  # "human" or "teacher:<model>"
    meta: dict[str, Any] = field(default_factory=dict)  # prompt hash, sample index, tokens, latency


@dataclass(frozen=True)
class Prediction:
    """A student's attempt at one problem: its trace, raw text and extracted answer."""

    problem_id: str
    method: str  # answer | cot | unified | iterative
    steps: tuple[Step, ...]
    output: str
    answer: str | None  # None when no answer could be extracted
    correct: bool | None
    meta: dict[str, Any] = field(default_factory=dict)  # tokens, seconds, why it failed


Record = TypeVar("Record", Problem, Chain, Prediction, Step)


class FieldError(ValueError):
    """A field of one JSON object is missing or has the wrong type; `read_jsonl` adds file and line."""

    def __init__(self, field_name: str, reason: str):
        self.field, self.reason = field_name, reason
        super().__init__(f"field '{field_name}': {reason}")


_REQUIRED = object()


def _get(row: Mapping[str, Any], name: str, kind: type | tuple[type, ...], default: Any = _REQUIRED) -> Any:
    if name not in row:
        if default is _REQUIRED:
            raise FieldError(name, "missing")
        return default
    value = row[name]
    # bool is an int in Python; a JSON true where a number or string belongs is still a type error.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise FieldError(name, f"expected {_type_names(kind)}, got {type(value).__name__} {value!r:.60}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _type_names(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", bool: "true/false", dict: "an object", list: "a list", type(None): "null"}
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))


def _strings(row: Mapping[str, Any], name: str) -> tuple[str, ...]:
    values = _get(row, name, list, default=[])
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise FieldError(f"{name}[{i}]", f"expected a string, got {type(value).__name__}")
    return tuple(values)


def _steps(row: Mapping[str, Any], name: str) -> tuple[Step, ...]:
    steps = []
    for i, item in enumerate(_get(row, name, list, default=[])):
        if not isinstance(item, dict):
            raise FieldError(f"{name}[{i}]", f"expected an object, got {type(item).__name__}")
        try:
            steps.append(Step(question=_get(item, "question", str), answer=_get(item, "answer", str)))
        except FieldError as e:
            raise FieldError(f"{name}[{i}].{e.field}", e.reason) from None
    return tuple(steps)


def _problem(row: Mapping[str, Any]) -> Problem:
    return Problem(
        id=_get(row, "id", str),
        dataset=_get(row, "dataset", str),
        question=_get(row, "question", str),
        answer=_get(row, "answer", str),
        facts=_strings(row, "facts"),
        decomposition=_strings(row, "decomposition"),
        equation=_get(row, "equation", (str, type(None)), default=None),
        human_steps=_steps(row, "human_steps"),
        meta=_get(row, "meta", dict, default={}),
    )


def _chain(row: Mapping[str, Any]) -> Chain:
    return Chain(
        problem_id=_get(row, "problem_id", str),
        style=_get(row, "style", str),
        steps=_steps(row, "steps"),
        final_answer=_get(row, "final_answer", str),
        correct=_get(row, "correct", (bool, type(None)), default=None),
        source=_get(row, "source", str),
        meta=_get(row, "meta", dict, default={}),
    )


def _prediction(row: Mapping[str, Any]) -> Prediction:
    return Prediction(
        problem_id=_get(row, "problem_id", str),
        method=_get(row, "method", str),
        steps=_steps(row, "steps"),
        output=_get(row, "output", str),
        answer=_get(row, "answer", (str, type(None))),
        correct=_get(row, "correct", (bool, type(None)), default=None),
        meta=_get(row, "meta", dict, default={}),
    )


def _step(row: Mapping[str, Any]) -> Step:
    return Step(question=_get(row, "question", str), answer=_get(row, "answer", str))


_FROM_DICT = {Problem: _problem, Chain: _chain, Prediction: _prediction, Step: _step}


def from_dict(kind: type[Record], row: Mapping[str, Any]) -> Record:
    """Build a record from a parsed JSON object; raises `FieldError` naming the bad field."""
    if not isinstance(row, Mapping):
        raise FieldError("<row>", f"expected a JSON object, got {type(row).__name__}")
    return _FROM_DICT[kind](row)


def to_dict(record: Problem | Chain | Prediction | Step) -> dict[str, Any]:
    return dataclasses.asdict(record)


def to_json(record: Problem | Chain | Prediction | Step) -> str:
    return json.dumps(to_dict(record), ensure_ascii=False)


def _line(record: Problem | Chain | Prediction | Step | Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) if isinstance(record, Mapping) else to_json(record)


def read_jsonl(path: str | Path, kind: type[Record] | None = None) -> Iterator[Any]:
    """Stream the objects of a JSONL file, as records of `kind` if given, else as dicts.

    Blank lines are skipped. A last line without its newline that is not valid JSON is what a
    killed writer leaves behind: it is skipped with a warning. Anything else malformed raises
    `RecordError` with the file, the line number (1-based) and the field.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                if not line.endswith("\n"):
                    log.warning("%s:%d: skipping a truncated last line (an interrupted write)", path, number)
                    return
                raise RecordError(path, number, f"not valid JSON ({e.msg} at column {e.colno})") from None
            if kind is None:
                yield row
                continue
            try:
                yield from_dict(kind, row)
            except FieldError as e:
                raise RecordError(path, number, e.reason, field=e.field) from None


def write_jsonl(path: str | Path, records: Iterable[Problem | Chain | Prediction | Step | Mapping[str, Any]]) -> Path:
    """Write a whole file atomically: readers see the old file or the new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(_line(record) + "\n")
    os.replace(tmp, path)
    return path


class JsonlAppender:
    """Append records to a JSONL file, one flushed line each, safe to kill at any moment.

        with JsonlAppender("runs/chains.jsonl") as out:
            out.append(chain)

    Opening cuts off a truncated last line left by an earlier killed writer. `fsync=True` also
    forces each line to disk, for output that costs money to reproduce (teacher replies).
    """

    def __init__(self, path: str | Path, fsync: bool = False):
        self.path = Path(path)
        self.fsync = fsync
        self._file = None

    def __enter__(self) -> JsonlAppender:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_truncated_tail(self.path)
        self._file = open(self.path, "a", encoding="utf-8")
        return self

    def append(self, record: Problem | Chain | Prediction | Step | Mapping[str, Any]) -> None:
        assert self._file is not None, "JsonlAppender.append outside its `with` block"
        self._file.write(_line(record) + "\n")
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _drop_truncated_tail(path: Path) -> None:
    """Cut a file back to its last newline, if its last line is incomplete."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        # Walk back in blocks to the last newline; files can be large, so never read them whole.
        end = f.seek(0, os.SEEK_END)
        position = end
        while position > 0:
            block_start = max(0, position - 65536)
            f.seek(block_start)
            block = f.read(position - block_start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                cut = block_start + newline + 1
                break
            position = block_start
        else:
            cut = 0
        log.warning("%s: dropping a truncated last line (%d bytes) left by an interrupted write", path, end - cut)
        f.truncate(cut)
