"""From attempts to `Prediction` records: the majority answer of a problem's attempts, and which problems
a predictions file already holds (what solve, ask and serve save)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from socratic.core.errors import SocraticError
from socratic.core.jsonl import read_jsonl
from socratic.core.records import Prediction, Problem
from socratic.solving.loops import Attempt
from socratic.tasks.base import Task


def to_prediction(problem: Problem, attempts: Sequence[Attempt], method: str, task: Task, seconds: float) -> Prediction:
    """The prediction of one problem: the majority answer of all attempts, the trace of the first attempt
    that gave it, and what all attempts cost (`tokens`: every token they generated)."""
    answers = [task.extract_answer(a.answer_text) for a in attempts]
    votes = Counter(a for a in answers if a is not None)
    answer = majority(answers)
    chosen = attempts[answers.index(answer)] if answer is not None else attempts[0]
    meta = {
        "finish": chosen.finish,
        "tokens": sum(a.tokens for a in attempts),
        "calculator": sum(a.calculator for a in attempts),
        "seconds": round(seconds, 3),
        "gold": problem.answer,
    }
    retried = sum(a.retried for a in attempts)
    if retried:
        meta["retried"] = retried
    if len(attempts) > 1:
        meta["votes"] = dict(votes)
        meta["answers"] = answers
        meta["attempt_tokens"] = [a.tokens for a in attempts]  # with `answers`: the vote of any first k, and its cost
    return Prediction(
        problem.id, method, chosen.steps, chosen.output, answer, task.is_correct(answer, problem.answer), meta
    )


def majority(answers: Sequence[str | None]) -> str | None:
    """The vote of attempts' answers (None: no answer read, no vote): the most frequent one, a tie going to
    the answer of the earliest attempt among the tied (most_common keeps the order of first appearance
    among equal counts); None when no attempt has an answer."""
    votes = Counter(a for a in answers if a is not None)
    return votes.most_common(1)[0][0] if votes else None


def already_solved(out: Path, method: str) -> set[str]:
    """The problems `out` already holds predictions for (an error if they are another method's)."""
    if not out.exists():
        return set()
    found = list(read_jsonl(out, Prediction))
    others = {p.method for p in found} - {method}
    if others:
        raise SocraticError(
            f"{out} holds predictions of another method ({', '.join(sorted(others))}): choose another --out"
        )
    return {p.problem_id for p in found}
