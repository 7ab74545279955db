"""The typed records passed between stages: what a problem, a chain and a prediction are.

    socratic data show --dataset gsm8k --split test --limit 1 --json    # one Problem as JSON

Every stage reads and writes one record type, one JSON object a line (see `socratic.core.jsonl`):
  tasks/    -> Problem      annotate -> Chain      solve -> Prediction
`from_dict` builds a record from a parsed row and checks every field's type, so a malformed row
is a `FieldError` naming the field, which the file readers turn into an error naming the line.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar


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
