"""`socratic.Student`: a trained student (or an iterative pair) answering problems from Python.

    python -c "import socratic; print(socratic.Student.load('runs/gsm8k/unified').solve(['2+3*4?'])[0].answer)"

What `socratic ask` does, as an object: the engines open once (`load`), then `solve` answers a list of
problems together (batched, as `socratic solve` decodes) and returns their `Prediction` records, and
`stream` gives one problem's dialogue piece by piece as it is written. Decoding is greedy unless
`decode`/`temperature` say otherwise, so the predictions are the ones `socratic solve` writes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from socratic.core.errors import SocraticError
from socratic.core.records import Prediction
from socratic.engines import GREEDY, Sampling
from socratic.solving.dialogue import Dialogues, prediction, refused
from socratic.solving.loops import Attempt, DecodeOptions
from socratic.solving.students import EngineOptions, find_student
from socratic.tasks.base import check_answer_kind


class Student:
    """A student ready to answer; build it with `Student.load`."""

    def __init__(self, dialogues: Dialogues, answers: str = "number"):
        self.dialogues, self.answers = dialogues, check_answer_kind(answers)
        self.asked = 0  # problems answered so far: their records are numbered ask/1, ask/2, ...

    @classmethod
    def load(
        cls,
        model: str | Path | None = None,
        *,
        qg: str | Path | None = None,
        qa: str | Path | None = None,
        runtime: EngineOptions | None = None,
        decode: DecodeOptions | None = None,
        temperature: float = 0.0,
        seed: int = 0,
        answers: str = "number",
    ) -> Student:
        """Open the student of a folder from `socratic train` (answer, cot, unified, or the folder holding
        an iterative pair's `qg/` and `qa/`), or the pair given as `qg` and `qa`. `runtime` picks the
        engine (`EngineOptions(engine="llamacpp")`), `decode` the token budgets and the calculator;
        `answers` is how an answer is read: number, yesno or text."""
        found = find_student(*(str(p) if p is not None else None for p in (model, qg, qa)))
        if temperature < 0:
            raise SocraticError(f"temperature must be 0 (greedy) or more, not {temperature}")
        sampling = Sampling(temperature, seed) if temperature > 0 else GREEDY
        settings = (decode or DecodeOptions()).settings(sampling)
        return cls(Dialogues(found, runtime or EngineOptions(), settings), answers)

    @property
    def name(self) -> str:
        return self.dialogues.student.name

    @property
    def method(self) -> str:
        return self.dialogues.student.method.name

    def solve(self, questions: Sequence[str]) -> list[Prediction]:
        """One `Prediction` per question, in order, decoded together. A problem too long for the
        student's context is not decoded: its prediction has no answer and `meta["finish"]` "too long"."""
        if isinstance(questions, str):
            raise SocraticError("solve takes a list of problems: solve([problem])")
        numbers = {self.dialogues.add(_checked(q)): n for n, q in enumerate(questions)}
        attempts: dict[int, Attempt] = {}
        try:
            while self.dialogues.busy:
                for i, attempt in self.dialogues.step()[1]:
                    attempts[numbers[i]] = attempt
        finally:  # interrupted (Ctrl-C in a notebook): nothing of these problems stays in the engines
            for i in numbers:
                if numbers[i] not in attempts:
                    self.dialogues.cancel(i)
        return [self._record(q, attempts[n]) for n, q in enumerate(questions)]

    def stream(self, question: str) -> Iterator[str]:
        """One problem's dialogue, piece by piece as it is written (whole lines; the answer line last):
        joined, the pieces are the text `socratic ask` prints, without the calculator's marks."""
        i = self.dialogues.add(_checked(question))
        done = False
        try:
            while not done:
                written, finished = self.dialogues.step()
                for _, text in written:
                    yield text
                for _, attempt in finished:
                    done = True
                    if refused(attempt):
                        raise SocraticError(too_long(question))
        finally:
            if not done:  # the caller stopped reading: free the problem's place in the engines
                self.dialogues.cancel(i)

    def _record(self, question: str, attempt: Attempt) -> Prediction:
        self.asked += 1
        return prediction(question, attempt, self.dialogues.student, self.answers, self.asked)


def _checked(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise SocraticError(f"a problem must be a non-empty string, not {question!r}")
    return question


def too_long(question: str) -> str:
    return (
        f"the problem ({len(question)} characters) with its token budget does not fit the student's context: "
        "shorten it, or lower the token budgets (DecodeOptions: max_new_tokens, step_tokens, max_steps)"
    )
