"""Chains <-> text for every student role: the one module that knows the layouts.

    python -c "from socratic.text import formats as f; print(f.examples('unified', '2+3*4?', f.EXAMPLE_STEPS, '14'))"

Training text and inference prompts are built by the same functions, and model output is parsed
back by their inverses, so training and inference cannot drift apart. Every layout is plain text, one
line per step, so any causal LM (base or instruct) can learn it. FORMAT_VERSION is stored with every
checkpoint; change it whenever a byte of a layout changes.

The layouts, for a problem P with subquestion/solution pairs (q1, s1) ... (qn, sn) and answer A.
Every prompt starts with `Problem: P` and a newline; loss is computed on the completion only.

| role      | prompt                                 | completion                                   |
|-----------|----------------------------------------|----------------------------------------------|
| `answer`  | Problem: P\\n                           | Answer: A                                    |
| `cot`     | Problem: P\\n                           | s1\\n ... sn\\nAnswer: A                        |
| `unified` | Problem: P\\n                           | Q: q1\\nA: s1\\n ... Q: qn\\nA: sn\\nAnswer: A    |
| `qg`      | Problem: P\\nQ: q1\\nA: s1\\n ... (k pairs)  | Q: q(k+1)\\n, or [END]\\n after the last pair  |
| `qa`      | Problem: P\\n ... (k pairs) Q: q(k+1)\\n     | A: s(k+1)\\n                                  |

So the iterative loop's text is the unified text without its answer line: QG and QA each extend
the other's prompt by one line, which keeps their KV caches reusable from step to step. The loop
reads its answer from the last solution (the paper's rule); a number is there in arithmetic chains,
but a yes/no verdict is not in a fact ("Genghis Khan had sixteen children."), so for yes/no answers
the last solution QA learns ends with "So the answer is A." (`iterative_steps`). QG and QA
completions end in a newline, which is where their generation stops; the others end with the
answer line and the tokenizer's end-of-sequence token (added by the trainer). Steps are single
lines: a newline inside a step is written as a space.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from socratic.core.records import Step

FORMAT_VERSION = 1
ROLES = ("answer", "cot", "unified", "qg", "qa")  # one text layout each; methods.METHODS says who uses which
ONE_PASS_ROLES = ("answer", "cot", "unified")  # the whole completion in one generation

PROBLEM_PREFIX = "Problem: "
SUBQUESTION_PREFIX = "Q:"
SOLUTION_PREFIX = "A:"
ANSWER_PREFIX = "Answer:"
END_MARKER = "[END]"  # QG's completion when the problem needs no more subquestions
LINE_STOP = "\n"  # where QG and QA generations end


def mode_for_style(style: str) -> str:
    """The one-pass layout a chain of `style` is written in: Socratic chains as `unified`, CoT as `cot`."""
    return "unified" if style == "socratic" else "cot"


EXAMPLE_STEPS = (
    Step("What is 3*4?", "3*4 = <<3*4=12>>12"),
    Step("What is 2 plus that?", "2+12 = <<2+12=14>>14"),
)


@dataclass(frozen=True)
class Example:
    """One training example: loss is computed on `completion` only."""

    prompt: str
    completion: str


@dataclass(frozen=True)
class ParsedChain:
    """What a model wrote in `answer`, `cot` or `unified` role, split back into parts."""

    steps: tuple[Step, ...]
    final_answer: str | None  # the text after "Answer:", if the model wrote that line

    @property
    def answer_text(self) -> str:
        """Where to look for the answer: the answer line, else the last solution (the paper's rule)."""
        if self.final_answer is not None:
            return self.final_answer
        return self.steps[-1].answer if self.steps else ""


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text)


def _require_subquestions(steps: Sequence[Step], role: str) -> None:
    missing = [i for i, step in enumerate(steps) if not step.question]
    assert not missing, f"role '{role}' needs a subquestion on every step; step {missing[0]} has none"


def problem_prompt(question: str) -> str:
    return f"{PROBLEM_PREFIX}{_one_line(question.strip())}\n"


def pairs_text(steps: Sequence[Step]) -> str:
    return "".join(
        f"{SUBQUESTION_PREFIX} {_one_line(s.question)}\n{SOLUTION_PREFIX} {_one_line(s.answer)}\n" for s in steps
    )


def answer_line(final_answer: str) -> str:
    return f"{ANSWER_PREFIX} {final_answer}"


def target(role: str, steps: Sequence[Step], final_answer: str) -> str:
    """The whole completion of a one-pass role (`answer`, `cot`, `unified`)."""
    if role == "answer":
        return answer_line(final_answer)
    if role == "cot":
        # A step with an empty solution (GSM8K has 6) would be a blank line: it says nothing, so it goes.
        return "".join(f"{_one_line(s.answer)}\n" for s in steps if s.answer.strip()) + answer_line(final_answer)
    if role == "unified":
        _require_subquestions(steps, role)
        return pairs_text(steps) + answer_line(final_answer)
    raise ValueError(f"'{role}' is not a one-pass role (answer, cot, unified)")


def iterative_steps(steps: Sequence[Step], final_answer: str) -> tuple[Step, ...]:
    """The chain's steps as QG and QA learn them: for a yes/no answer, the last solution states it."""
    if final_answer.strip().lower() not in ("yes", "no") or not steps:
        return tuple(steps)
    last = steps[-1]
    verdict = f"So the answer is {final_answer.strip().lower()}."
    return (*steps[:-1], Step(last.question, f"{last.answer.strip()} {verdict}".strip()))


def qg_prompt(question: str, steps_so_far: Sequence[Step]) -> str:
    return problem_prompt(question) + pairs_text(steps_so_far)


def qa_prompt(question: str, steps_so_far: Sequence[Step], subquestion: str) -> str:
    return qg_prompt(question, steps_so_far) + qg_completion(subquestion)


def qg_completion(subquestion: str | None) -> str:
    """QG's target: the next subquestion line, or the end marker when `subquestion` is None."""
    return f"{SUBQUESTION_PREFIX} {_one_line(subquestion)}\n" if subquestion is not None else f"{END_MARKER}\n"


def qa_completion(solution: str) -> str:
    return f"{SOLUTION_PREFIX} {_one_line(solution)}\n"


def examples(role: str, question: str, steps: Sequence[Step], final_answer: str) -> list[Example]:
    """The training examples one chain gives in `role`: one for one-pass roles, one per step for QA,
    and one per step plus the end marker for QG."""
    if role in ONE_PASS_ROLES:
        return [Example(problem_prompt(question), target(role, steps, final_answer))]
    _require_subquestions(steps, role)
    steps = iterative_steps(steps, final_answer)
    if role == "qg":
        nexts = [s.question for s in steps] + [None]
        return [Example(qg_prompt(question, steps[:k]), qg_completion(q)) for k, q in enumerate(nexts)]
    if role == "qa":
        return [
            Example(qa_prompt(question, steps[:k], s.question), qa_completion(s.answer)) for k, s in enumerate(steps)
        ]
    raise ValueError(f"unknown role '{role}' (choose from: {', '.join(ROLES)})")


def segments(role: str, question: str, steps: Sequence[Step], final_answer: str) -> list[tuple[str, bool]]:
    """One chain's whole training text in `role`, as (text, trained) pieces.

    For one-pass roles this is `examples` again (prompt untrained, completion trained). For QG and QA
    it is the iterative loop's whole text, once: every QG example (or QA example) of the chain is a
    prefix of it followed by one trained line, so one sequence with the loss on those lines teaches
    exactly what the per-step examples teach, at a fraction of the tokens (the per-step examples
    repeat the growing history: about 6x the tokens of `unified` on GSM8K, this about 2x).
    """
    if role in ONE_PASS_ROLES:
        (example,) = examples(role, question, steps, final_answer)
        return [(example.prompt, False), (example.completion, True)]
    if role not in ("qg", "qa"):
        raise ValueError(f"unknown role '{role}' (choose from: {', '.join(ROLES)})")
    _require_subquestions(steps, role)
    steps = iterative_steps(steps, final_answer)
    pieces = [(problem_prompt(question), False)]
    for step in steps:
        pieces += [(qg_completion(step.question), role == "qg"), (qa_completion(step.answer), role == "qa")]
    if role == "qg":
        pieces.append((qg_completion(None), True))
    return pieces


def _after_prefix(line: str, prefix: str) -> str | None:
    """The rest of `line` after `prefix` and one optional space, or None if it does not start so."""
    if not line.startswith(prefix):
        return None
    rest = line[len(prefix) :]
    return rest[1:] if rest.startswith(" ") else rest


def parse_chain(text: str) -> ParsedChain:
    """Split `answer`, `cot` or `unified` output into steps and the answer line; the inverse of `target`.

    Tolerant of what small models write: text after the answer line is ignored, an `A:` with no `Q:`
    before it and any other line become steps without a subquestion, blank lines are skipped.
    """
    steps: list[Step] = []
    pending_question: str | None = None
    for line in text.split("\n"):
        if (final := _after_prefix(line, ANSWER_PREFIX)) is not None:
            if pending_question is not None:
                steps.append(Step(pending_question, ""))
            return ParsedChain(tuple(steps), final)
        if (question := _after_prefix(line, SUBQUESTION_PREFIX)) is not None:
            if pending_question is not None:
                steps.append(Step(pending_question, ""))
            pending_question = question
        elif (solution := _after_prefix(line, SOLUTION_PREFIX)) is not None:
            steps.append(Step(pending_question or "", solution))
            pending_question = None
        elif line.strip():
            if pending_question is not None:
                steps.append(Step(pending_question, ""))
                pending_question = None
            steps.append(Step("", line))
    if pending_question is not None:
        steps.append(Step(pending_question, ""))
    return ParsedChain(tuple(steps), None)


def parse_subquestion(text: str) -> str | None:
    """QG output -> the next subquestion, or None when QG ended the decomposition (or wrote nothing)."""
    line = text.split("\n", 1)[0]
    if line.strip() == END_MARKER or not line.strip():
        return None
    question = _after_prefix(line, SUBQUESTION_PREFIX)
    return (question if question is not None else line).strip() or None


def step_key(step: Step) -> str:
    """What makes two steps "the same" when looking for loops: the subquestion (the solution for a CoT
    step), up to case and spacing."""
    return " ".join((step.question or step.answer).lower().split())


def parse_solution(text: str) -> str:
    """QA output -> the solution text of one step."""
    line = text.split("\n", 1)[0]
    solution = _after_prefix(line, SOLUTION_PREFIX)
    return (solution if solution is not None else line).strip()


# The first word of an answer line when it is the answer (a number, or yes / no) and a word follows it
# that does not go on computing: "Answer: $1,250.5 in all" -> "$1,250.5"; "Answer: 11 - 5 = 6" and
# "Answer: 11-5 = <<11-5=6>>6 more" (CoT students write these) run to the newline as before.
_ANSWER_WRITTEN = re.compile(r"[ \t]*((?:[$€£]?-?\d[\d,]*(?:\.\d+)?%?|(?i:yes|no))[.,!]?)[ \t]+(?=[^\s=+\-*/×x^(<])")


def completion_end(text: str, until: str) -> int | None:
    """Where generated text stops being the completion (index just past it), or None while it goes on.

    `until="line"`: QG and QA completions are one line, newline included. `until="answer"`: one-pass
    completions end with their answer line; the newline after it is not part of the completion (the
    model was trained to write end-of-sequence there, but a newline ends it just as well). The answer
    line also ends once its first word is the answer (a number, or yes / no) and another word follows
    that is not an operator (`_ANSWER_WRITTEN`): a student trained on "Answer: 22" that goes on with
    "22 | Background: The answer is 10. The answer is 11..." is read as 22, and stops there instead of
    writing to its token budget.
    """
    if until == "line":
        newline = text.find(LINE_STOP)
        return newline + 1 if newline >= 0 else None
    if until == "answer":
        line = re.search(rf"^{re.escape(ANSWER_PREFIX)}", text, re.MULTILINE)
        if line is None:
            return None
        newline = text.find("\n", line.start())
        if newline >= 0:
            return newline
        written = _ANSWER_WRITTEN.match(text, line.end())
        return written.end(1) if written else None
    raise ValueError(f"until must be 'line' or 'answer', not {until!r}")


# --- templates for other runtimes (`socratic export`) ---------------------------------------------
# llama.cpp, LM Studio and Ollama build a model's prompt from a template of their own. Each is
# generated from `problem_prompt` itself: the text around the problem is what `problem_prompt` writes
# around a placeholder, and the problem goes through each runtime's spelling of `_one_line(q.strip())`
# (tests/text/test_formats.py renders them against `problem_prompt` over generated problems).

_PLACEHOLDER = "\x00problem\x00"  # no whitespace: `problem_prompt` passes it through unchanged


def prompt_around_problem() -> tuple[str, str]:
    """The text `problem_prompt` writes before and after the problem: ("Problem: ", "\\n")."""
    before, after = problem_prompt(_PLACEHOLDER).split(_PLACEHOLDER)
    return before, after


def chat_template() -> str:
    """A Jinja chat template (GGUF `tokenizer.chat_template`: llama.cpp's server, llama-cpp-python's
    `create_chat_completion`, LM Studio): `problem_prompt` of the last user message.

    `_one_line(q.strip())` in Jinja: Python's `strip()` and the regex `\\s` take the same characters
    (Unicode whitespace), so stripping, splitting at each newline, stripping every line and joining the
    non-empty ones with one space folds every run of whitespace holding a newline into one space."""
    before, after = prompt_around_problem()
    return (
        "{%- set ns = namespace(problem='') -%}"
        "{%- for message in messages -%}"
        "{%- if message['role'] == 'user' -%}{%- set ns.problem = message['content'] -%}{%- endif -%}"
        "{%- endfor -%}"
        # One expression, the text around the problem as string literals: Jinja would drop a template's
        # final newline.
        f"{{{{ {json.dumps(before)} ~ ((ns.problem | trim).split('\\n') | map('trim') | select | join(' ')) ~ "
        f"{json.dumps(after)} }}}}"
    )


def ollama_template() -> str:
    """Ollama's TEMPLATE (Go text/template): `problem_prompt`'s text around `.Prompt`. Ollama's templates
    have no string functions (its FuncMap: json, currentDate, yesterdayDate, toTypeScriptType), so the
    problem cannot be folded there: a problem on one line, without outer spaces, is prompted exactly as
    in training; `one_line_problem` is what to send."""
    before, after = prompt_around_problem()
    return f"{before}{{{{ .Prompt }}}}{after}"


def one_line_problem(question: str) -> str:
    """The problem as `problem_prompt` writes it: what a runtime that cannot fold text (Ollama) is given."""
    before, after = prompt_around_problem()
    return problem_prompt(question)[len(before) : -len(after)]
