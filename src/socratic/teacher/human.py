"""Chains written by the datasets' own annotators: the pipeline with no teacher at all.

    socratic annotate --dataset gsm8k --split train --style socratic --teacher human

- GSM8K: its Socratic variant has a subquestion and a solution for every step, so every problem
  gives one `socratic` chain; the `cot` chain is the same solutions without their subquestions.
- StrategyQA: annotators wrote subquestions (`decomposition`) and, separately, `facts`. A `cot`
  chain is the facts, one a line. A `socratic` chain needs a solution per subquestion, so it is
  made only where there are exactly as many facts as subquestions, pairing them in order
  (762 of the 2,061 training problems); the others are rejected as "facts do not align".
  A teacher given the facts (`--with-facts`) decomposes all of them.
- SVAMP has no human reasoning; use a teacher.
"""

from __future__ import annotations

from socratic.core.errors import SocraticError
from socratic.core.records import Chain, Problem, Step

NOT_ALIGNED = "facts do not align with subquestions"


def human_chain(problem: Problem, style: str) -> Chain | str:
    """The annotators' chain for a problem in `style`, or the reason there is none."""
    if problem.human_steps:
        steps = problem.human_steps
        if style == "cot":
            steps = tuple(Step("", s.answer) for s in steps if s.answer.strip())
    elif problem.decomposition or problem.facts:
        if style == "cot":
            steps = tuple(Step("", fact) for fact in problem.facts)
        elif len(problem.facts) == len(problem.decomposition):
            steps = tuple(Step(q, fact) for q, fact in zip(problem.decomposition, problem.facts, strict=True))
        else:
            return NOT_ALIGNED
    else:
        raise SocraticError(
            f"{problem.dataset} has no human reasoning to use; annotate it with a teacher "
            f"(--teacher llamacpp:qwen2.5-coder-1.5b or openai:<url>)"
        )
    if not steps:
        return "empty"
    return Chain(
        problem_id=problem.id,
        style=style,
        steps=steps,
        final_answer=problem.answer,
        correct=True,
        source="human",
        meta={},
    )
