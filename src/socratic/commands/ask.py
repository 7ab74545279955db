"""`socratic ask`: a trained student answers your problem, writing its dialogue as it goes.

    socratic ask --model runs/gsm8k/unified "Tom has 3 boxes of 12 eggs and breaks 5. How many are left?"
    socratic ask --model runs/gsm8k/iterative "..."        # the folder holding the pair's qg/ and qa/
    echo "Tom has 3 boxes ..." | socratic ask --model runs/gsm8k/unified --engine llamacpp
    socratic ask --model runs/gsm8k/unified                # no problem given: asks for one after another
    socratic ask --model runs/gsm8k/unified --json "..."   # the Prediction record `solve` would save

The problem comes from the argument, else from stdin (all of it, one problem), else, on a terminal,
from a prompt that asks for problem after problem (an empty line or Ctrl-D ends). The student writes
its subquestions (`Q:`) and solutions (`A:`) line by line as they are generated, then its answer
(`Answer:`); values the calculator wrote into `<<expr=value>>` annotations are marked: bold on a
terminal, `[value]` elsewhere. With the llamacpp engine a one-pass student's lines appear as each
is written; the hf engine shows a one-pass student's text when it is complete (an iterative pair
line by line with either). Decoding is greedy, as `socratic solve` does by default, so the dialogue
is the one `solve` writes for the same problem.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

from socratic.core.console import terminal_safe
from socratic.core.errors import SocraticError
from socratic.core.records import to_json
from socratic.solving.dialogue import Dialogues, mark_calculator, prediction, refused
from socratic.solving.loops import DecodeOptions
from socratic.solving.students import EngineOptions, StudentOptions
from socratic.tasks.base import ANSWER_KINDS
from socratic.text.checked import tokenizable

BOLD = ("\033[1m", "\033[0m")
BRACKETS = ("[", "]")


@dataclass(frozen=True)
class AskConfig:
    problem: str | None = field(
        default=None, metadata={"help": "the problem (default: stdin, or a prompt on a terminal)", "positional": "?"}
    )
    student: StudentOptions = field(default_factory=StudentOptions)
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    runtime: EngineOptions = field(default_factory=EngineOptions)
    answers: str = field(
        default="number",
        metadata={"help": "the kind of answer read for --json: number, yesno or text", "choices": ANSWER_KINDS},
    )
    json: bool = field(default=False, metadata={"help": "print the Prediction record (JSON) instead of the dialogue"})


def run_ask(
    config: AskConfig, problem: str | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None
) -> None:
    """Answer `problem` (else `config.problem`, else stdin's, else each one typed at a prompt)."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    problem = config.problem if problem is None else problem
    student = config.student.student()
    interactive = problem is None and stdin.isatty()
    if problem is None and not interactive:
        problem = read_stdin(stdin)
    if problem is not None:
        tokenizable(problem, "the problem")  # before the student loads
        if not problem.strip():
            raise SocraticError("the problem is empty: give it as an argument or on stdin")
    dialogues = Dialogues(student, config.runtime, config.decode.settings())
    mark = BOLD if stdout.isatty() else BRACKETS
    if not interactive:
        answer(dialogues, problem, config, mark, stdout)  # type: ignore[arg-type]
        return
    number = 0
    while True:
        try:
            typed = input("problem> ")
        except EOFError:
            print(file=stdout)
            return
        if not typed.strip():
            return
        number += 1
        try:
            answer(dialogues, typed, config, mark, stdout, number)
        except SocraticError as e:  # e.g. a problem too long: say so, and ask for the next one
            print(f"socratic: error: {e}", file=sys.stderr)


def read_stdin(stdin: TextIO) -> str:
    """All of stdin as text: its bytes decoded as UTF-8 here, so that bytes that are not text are one
    line naming the first, whatever the locale's decoding would have made of them."""
    if not hasattr(stdin, "buffer"):  # a text stream of the caller's (tests): `tokenizable` checks it
        return stdin.read()
    raw = stdin.buffer.read()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SocraticError(f"stdin is not UTF-8 text (byte 0x{raw[e.start]:02x} at byte {e.start + 1})") from None


def shown(text: str, config: AskConfig, mark: tuple[str, str], terminal: bool) -> str:
    """The student's text as printed: on a terminal nothing in it can drive the terminal (an escape
    sequence the model wrote is shown as `\\x1b[...`; elsewhere the text is exactly what `solve`
    saves), and the calculator's values are marked."""
    text = terminal_safe(text) if terminal else text
    return mark_calculator(text, mark) if config.decode.calculator else text


def answer(
    dialogues: Dialogues, problem: str, config: AskConfig, mark: tuple[str, str], stdout: TextIO, number: int = 1
) -> None:
    """Solve one problem, writing its dialogue line by line as it is generated (or its record with --json)."""
    i = dialogues.add(problem)
    terminal = stdout.isatty()
    pending = ""  # the last piece of text when it does not end a line yet (the end of the answer line)
    while dialogues.busy:
        written, finished = dialogues.step()
        for _, text in written:
            if config.json:
                continue
            text = pending + text
            complete, pending = text[: text.rfind("\n") + 1], text[text.rfind("\n") + 1 :]
            stdout.write(shown(complete, config, mark, terminal))
            stdout.flush()
        for j, attempt in finished:
            assert j == i
            if refused(attempt):
                raise SocraticError(
                    f"the problem ({len(problem)} characters) with its token budget does not fit the student's "
                    "context: shorten it, or lower --max-new-tokens / --step-tokens and --max-steps"
                )
            if config.json:
                record = prediction(problem, attempt, dialogues.student, config.answers, number)
                stdout.write(to_json(record) + "\n")
            else:
                stdout.write(shown(pending, config, mark, terminal) + "\n")
            stdout.flush()
