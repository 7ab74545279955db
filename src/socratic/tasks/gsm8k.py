"""GSM8K: grade-school math word problems with human Socratic annotations (train 7,473 / test 1,319).

    socratic data show --dataset gsm8k --split test --limit 2

Source: Cobbe et al. 2021, github.com/openai/grade-school-math (MIT, data/gsm8k/LICENSE). We ship its
`socratic` variant, where every solution line is "subquestion ** solution" and the last line is
"#### <answer>":

    How many clips did Natalia sell in May? ** Natalia sold 48/2 = <<48/2=24>>24 clips in May.
    ...
    #### 72

`parse_solution` splits that text into `Step`s and the final answer exactly (`format_solution`
rebuilds it byte for byte, tested on every problem); the plain chain of thought of the main GSM8K
variant is the same steps without their subquestions. Answers are integers; a prediction is read
with `answers.extract_number` (the number after "####" or "The answer is", else the last number).
"""

from __future__ import annotations

import json

from socratic.core.records import Problem, Step
from socratic.tasks.base import Task, parsed_once, shipped_lines
from socratic.text.answers import normalize_answer

SUBQUESTION_SEPARATOR = " ** "
FINAL_ANSWER_PREFIX = "#### "


def parse_solution(text: str) -> tuple[tuple[Step, ...], str]:
    """Split a GSM8K Socratic solution into its steps and the text of its final answer."""
    *step_lines, final_line = text.split("\n")
    assert final_line.startswith(FINAL_ANSWER_PREFIX), f"GSM8K solution must end with '####': {final_line!r}"
    steps = []
    for line in step_lines:
        question, separator, answer = line.partition(SUBQUESTION_SEPARATOR)
        # The plain (non-Socratic) variant has no subquestions: the whole line is the solution.
        steps.append(Step(question=question, answer=answer) if separator else Step(question="", answer=line))
    return tuple(steps), final_line.removeprefix(FINAL_ANSWER_PREFIX)


def format_solution(steps: tuple[Step, ...], final_answer: str) -> str:
    """The inverse of `parse_solution`: GSM8K's own text for steps and a final answer."""
    lines = [f"{s.question}{SUBQUESTION_SEPARATOR}{s.answer}" if s.question else s.answer for s in steps]
    return "\n".join([*lines, FINAL_ANSWER_PREFIX + final_answer])


@parsed_once
def load(split: str) -> list[Problem]:
    problems = []
    for index, line in enumerate(shipped_lines("gsm8k", f"{split}.jsonl")):
        row = json.loads(line)
        steps, final_answer = parse_solution(row["answer"])
        problems.append(
            Problem(
                id=f"gsm8k/{split}/{index}",
                dataset="gsm8k",
                question=row["question"],
                answer=normalize_answer(final_answer),
                human_steps=steps,
            )
        )
    return problems


TASK = Task(
    name="gsm8k",
    description="grade-school math, 2-8 steps, human Socratic subquestions (Cobbe et al. 2021)",
    splits=("train", "test"),
    answer_kind="number",
    loader=load,
    hub_id="openai/gsm8k",
)
