"""How students write their answers: one pass, or the QG <-> QA loop over many problems at once.

`solve_one_pass` hands every prompt to the engine in one call (`answer`, `cot`, `unified`).
`solve_iterative` keeps an active set of problems going back and forth between QG and QA: in
rounds, all QG lines in one batch and then all QA lines; a problem leaves when QG writes the end
marker or after `max_steps` pairs (or, with `stop_on_repeat`, when QG repeats itself), and the next
waiting problem takes its place. Both return one
`Attempt` per prompt; `socratic.solve` turns attempts into saved `Prediction`s.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from socratic import formats
from socratic.engines import GREEDY, Completion, Engine, Sampling
from socratic.engines.base import TOO_LONG, stepwise
from socratic.records import Step


@dataclass(frozen=True)
class DecodeSettings:
    """What the loops need to know of a solve: sampling, token budgets, the calculator."""

    sampling: Sampling = GREEDY
    max_new_tokens: int = 256  # one-pass completions
    step_tokens: int = 96  # one QG or QA line
    max_steps: int = 10  # most subquestion/solution pairs of an iterative attempt
    calculator: bool = True
    stop_on_repeat: bool = False  # end an iterative attempt when QG asks a subquestion it already asked


@dataclass
class Attempt:
    """One decoding of one problem, before it becomes a `Prediction`."""

    steps: tuple[Step, ...] = ()
    output: str = ""
    answer_text: str = ""
    finish: str = ""
    tokens: int = 0
    calculator: int = 0
    seconds: float = field(default=0.0, compare=False)  # its share of the wall time of the batches it was in


def solve_one_pass(
    engine: Engine,
    questions: Sequence[str],
    settings: DecodeSettings,
    progress: Callable[[int], None] | None = None,
) -> list[Attempt]:
    """`answer`, `cot` or `unified`: one generation per problem (the prompt is the same for all three)."""
    prompts = [formats.problem_prompt(q) for q in questions]
    completions = engine.complete(
        prompts, "answer", settings.max_new_tokens, settings.sampling, settings.calculator, progress=progress
    )
    return [one_pass_attempt(c) for c in completions]


def one_pass_attempt(completion: Completion) -> Attempt:
    parsed = formats.parse_chain(completion.text)
    answer_text = parsed.answer_text
    if parsed.final_answer is None and completion.finish == "length":
        # Cut off before its answer line: read the last complete solution, not a number cut in half.
        complete = formats.parse_chain(completion.text[: completion.text.rfind("\n") + 1])
        solved = [step.answer for step in complete.steps if step.answer.strip()]
        answer_text = solved[-1] if solved else ""
    finish = "answer" if parsed.final_answer is not None else completion.finish
    return Attempt(parsed.steps, completion.text, answer_text, finish, completion.tokens, completion.calculator)


def solve_iterative(
    qg: Engine | None,
    qa: Engine,
    questions: Sequence[str],
    settings: DecodeSettings,
    oracle: Sequence[Sequence[str]] | None = None,
    progress: Callable[[int], None] | None = None,
    width: int | None = None,
    on_finished: Callable[[int, Attempt], None] | None = None,
    continuous: bool = False,
) -> list[Attempt]:
    """The QG <-> QA loop over all `questions` at once.

    Each problem goes back and forth between the two engines: its QG prompt is submitted, and when
    QG's line is written its QA prompt, and so on. By default in rounds (`Rounds`): all QG lines in
    one batch, then all QA lines. With `continuous`, an engine that takes prompts while it decodes
    others (llama.cpp) gets each problem the moment the other model is done with it, so nobody
    waits for the longest line of a round; on 2 CPU cores that was slower (each model's calls carry
    half the sequences; docs/RESULTS.md), so it is kept for benchmarks and larger machines.
    At most `width` problems are active at once (default: all of them); the place of a finished
    problem goes to the next waiting one. `on_finished(i, attempt)` is called the moment problem i
    is done, e.g. to save it. `oracle[i]` are problem i's human subquestions: when given, QG is not
    asked. A problem whose next QG or QA prompt does not fit the engine's context ends there with
    finish "too long" (its last solution, if any, is its answer, as at `max_steps`).
    """
    attempts = [Attempt() for _ in questions]
    asker = stepwise(qg, continuous) if oracle is None and qg is not None else None
    if oracle is None and asker is None:
        raise ValueError("iterative solving needs a QG engine unless oracle subquestions are given")
    answerer = asker if asker is not None and qg is qa else stepwise(qa, continuous)
    engines = list({id(e): e for e in (asker, answerer) if e is not None}.values())
    # Per engine: ticket -> (problem, the subquestion QA answers; None for a QG request).
    tickets: dict[int, dict[int, tuple[int, str | None]]] = {id(e): {} for e in engines}
    last: dict[int, dict[int, int]] = {id(e): {} for e in engines}  # per engine: problem -> its latest ticket
    waiting = deque(range(len(questions)))
    active: set[int] = set()
    ended: list[int] = []

    def ask(i: int) -> None:
        if oracle is not None:
            answer(i, _nth(oracle[i], len(attempts[i].steps)))
            return
        prompt = formats.qg_prompt(questions[i], attempts[i].steps)
        [ticket] = asker.submit([prompt], "line", settings.step_tokens, settings.sampling, False)  # type: ignore[union-attr]
        tickets[id(asker)][ticket] = (i, None)
        last[id(asker)][i] = ticket

    def answer(i: int, subquestion: str | None) -> None:
        # A problem at --max-steps is asked once more: if QG ends it there it is finished, not cut off.
        attempt = attempts[i]
        if subquestion is None or len(attempt.steps) == settings.max_steps:
            attempt.finish = "end" if subquestion is None else "max_steps"
            ended.append(i)
            return
        if settings.stop_on_repeat and _asked_before(subquestion, attempt.steps):
            # A greedy QG that repeats itself has entered a loop; its answer is the last new solution.
            attempt.finish = "repeat"
            ended.append(i)
            return
        prompt = formats.qa_prompt(questions[i], attempt.steps, subquestion)
        [ticket] = answerer.submit([prompt], "line", settings.step_tokens, settings.sampling, settings.calculator)
        tickets[id(answerer)][ticket] = (i, subquestion)
        last[id(answerer)][i] = ticket

    while waiting or active:
        started = time.perf_counter()
        while waiting and len(active) < (width or len(questions)):
            active.add(waiting[0])
            ask(waiting.popleft())
        for engine in engines:
            for ticket, completion in engine.step() if engine.busy else ():
                i, subquestion = tickets[id(engine)].pop(ticket)
                attempts[i].tokens += completion.tokens
                if completion.finish == TOO_LONG:  # its history outgrew the context: it ends as if at --max-steps
                    attempts[i].finish = TOO_LONG
                    ended.append(i)
                elif subquestion is None:  # QG's line: the next subquestion, or the end marker
                    answer(i, formats.parse_subquestion(completion.text))
                else:
                    attempts[i].steps += (Step(subquestion, formats.parse_solution(completion.text)),)
                    attempts[i].calculator += completion.calculator
                    ask(i)
        share = (time.perf_counter() - started) / len(active)
        for i in active:
            attempts[i].seconds += share
        for engine in engines:  # the engines' caches of finished problems can go first
            engine.release([last[id(engine)].pop(i) for i in ended if i in last[id(engine)]])
        for i in ended:
            active.remove(i)
            _close(attempts[i])
            if on_finished:
                on_finished(i, attempts[i])
        if progress and ended:
            progress(len(ended))
        ended.clear()
    return attempts


def _close(attempt: Attempt) -> None:
    """The finished attempt's text and answer: the pairs (plus the end marker) and the last solution."""
    attempt.output = formats.pairs_text(attempt.steps) + (formats.END_MARKER if attempt.finish == "end" else "")
    attempt.answer_text = attempt.steps[-1].answer if attempt.steps else ""


def _asked_before(subquestion: str, steps: Sequence[Step]) -> bool:
    key = formats.step_key(Step(subquestion, ""))
    return any(formats.step_key(step) == key for step in steps)


def _nth(subquestions: Sequence[str], n: int) -> str | None:
    return subquestions[n] if n < len(subquestions) else None
