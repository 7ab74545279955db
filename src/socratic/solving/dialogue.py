"""A trained student answering problems one by one as they come: what `socratic ask` and
`socratic serve` share.

    student = StudentOptions("runs/gsm8k/unified").student()   # or the folder holding qg/ and qa/ (students.py)
    dialogues = Dialogues(student, EngineOptions(engine="llamacpp"), DecodeOptions().settings())
    i = dialogues.add("Tom has 3 apples ...")
    while dialogues.busy:
        written, finished = dialogues.step()                # new dialogue text per problem, attempts that ended

The students' engines are opened once; every problem added shares them (and their continuous
batching: the loops of `socratic.solving.loops` take problems at any step). The dialogue of a problem is
the text of its layout (`formats`): `Q: ...` / `A: ...` lines, then `Answer: ...`; `written` gives
each problem's new complete lines as they are generated, so a caller can stream them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from socratic.core.records import Prediction, Problem
from socratic.engines.base import TOO_LONG
from socratic.solving import students
from socratic.solving.loops import Attempt, DecodeSettings, IterativeLoop, OnePassLoop
from socratic.solving.predictions import to_prediction
from socratic.solving.students import EngineOptions, Student
from socratic.tasks.base import Task
from socratic.text import formats
from socratic.text.calculator import CalculatorError, calculate
from socratic.text.checked import tokenizable


class Dialogues:
    """One student's engines answering any number of problems, added at any time; see the module docstring."""

    def __init__(self, student: Student, options: EngineOptions, decoding: DecodeSettings):
        self.student, self.decoding = student, decoding
        qg, qa = students.open_engines(student.method, student.folders, options, decoding)
        self.counter = None  # a tokenizer for counting tokens (serve's usage), loaded when first needed
        self.loop: IterativeLoop | OnePassLoop = (
            IterativeLoop(qg, qa, decoding, continuous=True, width=options.batch_size)
            if student.iterative
            else OnePassLoop(qa, decoding)
        )
        self.sent: dict[int, str] = {}  # problem -> the dialogue text `step` has given so far

    def add(self, question: str, decoding: DecodeSettings | None = None) -> int:
        """Start answering `question` (with `decoding`, sampling and token budgets of its own: a serve
        request's); text no tokenizer can read is refused here (`SocraticError`), before it joins the
        engines' batch. Returns the problem's number."""
        i = self.loop.add(tokenizable(question, "the problem"), settings=decoding)
        self.sent[i] = ""
        return i

    def prompt_tokens(self, question: str) -> int:
        """The tokens of the problem's prompt, `formats.problem_prompt`, as the student reads them."""
        return self.count_tokens(formats.problem_prompt(question))

    def count_tokens(self, text: str) -> int:
        # A tokenizer of its own: the engines' may be in use in the engine thread (a Rust tokenizer
        # used by two threads at once fails with "Already borrowed").
        if self.counter is None:
            from transformers import AutoTokenizer

            self.counter = AutoTokenizer.from_pretrained(next(iter(self.student.folders.values())))
        return len(self.counter(text, add_special_tokens=False)["input_ids"])

    def cancel(self, i: int) -> None:
        self.loop.cancel(i)
        self.sent.pop(i, None)

    @property
    def busy(self) -> bool:
        return self.loop.busy

    def step(self) -> tuple[list[tuple[int, str]], list[tuple[int, Attempt]]]:
        """One step of the engines: (problem, its new dialogue text) for each problem that wrote a
        line, and (problem, attempt) for each that ended. A problem's pieces of text, joined, are
        `reply(attempt)` once it ends (the end comes as one last piece)."""
        finished = self.loop.step()
        written = []
        for i, attempt in finished:
            if not refused(attempt):
                written.append((i, self._new_text(i, reply(attempt, self.student.iterative))))
            del self.sent[i]
        for i in self.loop.running():
            if new := self._new_text(i, self.loop.text(i)):
                written.append((i, new))
        return [(i, text) for i, text in written if text], finished

    def _new_text(self, i: int, text: str) -> str:
        # Text already given is never taken back: if decoding a later token changed it (rare), only
        # what lies past it is new.
        sent = self.sent[i]
        self.sent[i] = text if len(text) > len(sent) else sent
        return text[len(sent) :]


def refused(attempt: Attempt) -> bool:
    """Whether the problem was never decoded: its prompt and token budget do not fit the context."""
    return attempt.finish == TOO_LONG and not attempt.steps and not attempt.output


def reply(attempt: Attempt, iterative: bool) -> str:
    """A finished problem's dialogue, always ending with an answer line: a one-pass student's text (an
    answer line added after the last solution when it was cut off before writing one), or an
    iterative pair's pairs with the last solution's answer (the paper's rule) as the answer line."""
    if iterative:
        return formats.pairs_text(attempt.steps) + formats.answer_line(attempt.answer_text)
    if formats.parse_chain(attempt.output).final_answer is not None:
        return attempt.output
    separator = "" if attempt.output.endswith("\n") or not attempt.output else "\n"
    return attempt.output + separator + formats.answer_line(attempt.answer_text)


def answer_task(kind: str) -> Task:
    """A task with no problems of its own, to read answers of `kind` from a student's text."""
    return Task("ask", "problems typed by the user", ("ask",), kind, loader=lambda split: [])


def prediction(question: str, attempt: Attempt, student: Student, kind: str = "number", number: int = 1) -> Prediction:
    """The `Prediction` record of one problem asked, as `socratic solve` would save it (no gold answer)."""
    problem = Problem(f"ask/{number}", "ask", question, "")
    found = to_prediction(problem, [attempt], student.method.name, answer_task(kind), attempt.seconds)
    meta = {key: value for key, value in found.meta.items() if key != "gold"}
    return Prediction(found.problem_id, found.method, found.steps, found.output, found.answer, None, meta)


_ANNOTATION = re.compile(r"<<([^<>=]*)=([^<>]*)>>")


def mark_calculator(text: str, mark: Sequence[str] = ("[", "]")) -> str:
    """`text` with each value the calculator wrote between `mark`: `<<3*4=[12]>>`.

    While decoding, the calculator writes the value of every annotation whose expression it can
    compute (`Decoding`), so those are the values equal to their expression's; the rest are the model's.
    """

    def marked(match: re.Match) -> str:
        expression, value = match.group(1), match.group(2)
        try:
            computed = calculate(expression)
        except CalculatorError:
            return match.group(0)
        if computed != value:
            return match.group(0)
        return f"<<{expression}={mark[0]}{value}{mark[1]}>>"

    return _ANNOTATION.sub(marked, text)
