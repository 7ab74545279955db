"""How students write their answers: one pass, or the QG <-> QA loop over many problems at once.

`solve_one_pass` hands every prompt to the engine in one call (`answer`, `cot`, `unified`).
`solve_iterative` keeps an active set of problems going back and forth between QG and QA: in
rounds, all QG lines in one batch and then all QA lines; a problem leaves when QG writes the end
marker or after `max_steps` pairs (or, with `stop_on_repeat`, when QG repeats itself), and the next
waiting problem takes its place. With `retry_repeats`, a QG line that repeats an earlier
subquestion is asked again, sampled, before anything else is done with it. With `qg_sampling`, QG's
lines are sampled and QA's are not (self-consistency over decompositions). Both return one
`Attempt` per prompt; `socratic.commands.solve` turns attempts into saved `Prediction`s.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from socratic.core.records import Step
from socratic.engines import GREEDY, Completion, Engine, Sampling
from socratic.engines.base import TOO_LONG, stepwise
from socratic.text import formats

# A QG line asked again after a repeat (--retry-repeats) is sampled at this temperature: warm enough
# to leave the greedy line, cool enough to keep QG's layout (the teacher's diverse samples use it too).
RETRY_TEMPERATURE = 0.7


@dataclass(frozen=True)
class DecodeOptions:
    """The decoding flags `solve`, `ask` and `serve` share: token budgets, the loop's length and stop
    rule, the calculator (an option group of their configs)."""

    max_new_tokens: int = field(default=256, metadata={"help": "token budget of one-pass completions", "min": 1})
    step_tokens: int = field(default=96, metadata={"help": "token budget of one QG or QA line (iterative)", "min": 1})
    max_steps: int = field(
        default=10, metadata={"help": "most subquestion/solution pairs per problem (iterative)", "min": 1}
    )
    calculator: bool = field(
        default=True, metadata={"help": "write the calculator's value into <<expr=...>> annotations"}
    )
    stop_on_repeat: bool = field(
        default=False,
        metadata={
            "help": "iterative: end a problem when QG asks a subquestion it already asked, and answer from "
            "the last new solution (a greedy QG that repeats itself is in a loop)"
        },
    )
    retry_repeats: int = field(
        default=0,
        metadata={
            "help": f"iterative: when QG asks a subquestion it already asked, ask it again up to N times, "
            f"sampling at temperature {RETRY_TEMPERATURE}, and go on with the first new one; if all N repeat "
            "too, the repeat is answered (or ends the problem, with --stop-on-repeat)",
            "min": 0,
        },
    )

    def settings(self, sampling: Sampling = GREEDY) -> DecodeSettings:
        """What the loops read: these options, sampled with `sampling`."""
        return DecodeSettings(self, sampling)


@dataclass(frozen=True)
class DecodeSettings:
    """What the loops read: the decoding options (`DecodeOptions`, the flags), and what a command
    decides from its other flags or a request: the sampling, and a budget for a whole attempt."""

    decode: DecodeOptions = field(default_factory=DecodeOptions)
    sampling: Sampling = GREEDY
    max_tokens: int | None = None  # most tokens of one iterative attempt, all its lines (a serve request's)
    # QG's lines sampled thus while QA's follow `sampling` (self-consistency over decompositions); None: `sampling`
    qg_sampling: Sampling | None = None


@dataclass
class Attempt:
    """One decoding of one problem, before it becomes a `Prediction`."""

    steps: tuple[Step, ...] = ()
    output: str = ""
    answer_text: str = ""
    finish: str = ""
    tokens: int = 0
    calculator: int = 0
    retried: int = 0  # QG lines asked again because they repeated an earlier subquestion (--retry-repeats)
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
        prompts,
        "answer",
        settings.decode.max_new_tokens,
        settings.sampling,
        settings.decode.calculator,
        progress=progress,
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
    """The QG <-> QA loop over all `questions` at once (an `IterativeLoop` given them all).

    Each problem goes back and forth between the two engines: its QG prompt is submitted, and when
    QG's line is written its QA prompt, and so on. By default in rounds (`Rounds`): all QG lines in
    one batch, then all QA lines. With `continuous`, an engine that takes prompts while it decodes
    others (llama.cpp) gets each problem the moment the other model is done with it, so nobody
    waits for the longest line of a round; on 2 CPU cores that was slower (each model's calls carry
    half the sequences; docs/RESULTS.md), so it is kept for benchmarks, larger machines and
    `socratic serve` (where problems arrive at any time).
    At most `width` problems are active at once (default: all of them); the place of a finished
    problem goes to the next waiting one. `on_finished(i, attempt)` is called the moment problem i
    is done, e.g. to save it. `oracle[i]` are problem i's human subquestions: when given, QG is not
    asked. A problem whose next QG or QA prompt does not fit the engine's context ends there with
    finish "too long" (its last solution, if any, is its answer, as at `max_steps`).
    """
    if oracle is None and qg is None:
        raise ValueError("iterative solving needs a QG engine unless oracle subquestions are given")
    loop = IterativeLoop(qg if oracle is None else None, qa, settings, continuous, width)
    for n, question in enumerate(questions):
        loop.add(question, oracle[n] if oracle is not None else None)
    attempts = [Attempt() for _ in questions]
    while loop.busy:
        finished = loop.step()
        for i, attempt in finished:
            attempts[i] = attempt
            if on_finished:
                on_finished(i, attempt)
        if progress and finished:
            progress(len(finished))
    return attempts


class IterativeLoop:
    """The QG <-> QA loop as a scheduler: problems join (`add`) and leave (`cancel`) at any time, and
    each `step` moves every active problem on by what its engines wrote in one step.

    `solve_iterative` gives it a dataset at once; `socratic serve` adds requests as they come. A
    problem is numbered by `add` (0, 1, ...); `text(i)` is its dialogue so far, for streaming.
    """

    def __init__(
        self,
        qg: Engine | None,
        qa: Engine,
        settings: DecodeSettings,
        continuous: bool = False,
        width: int | None = None,
    ):
        self.settings, self.width = settings, width
        self.asker = stepwise(qg, continuous) if qg is not None else None
        self.answerer = self.asker if self.asker is not None and qg is qa else stepwise(qa, continuous)
        self.engines = list({id(e): e for e in (self.asker, self.answerer) if e is not None}.values())
        # Per engine: ticket -> (problem, the subquestion QA answers; None for a QG request).
        self.tickets: dict[int, dict[int, tuple[int, str | None]]] = {id(e): {} for e in self.engines}
        self.last: dict[int, dict[int, int]] = {id(e): {} for e in self.engines}  # problem -> its latest ticket
        self.questions: dict[int, str] = {}
        self.settings_of: dict[int, DecodeSettings] = {}  # problems added with settings of their own
        self.oracle: dict[int, Sequence[str]] = {}
        self.attempts: dict[int, Attempt] = {}
        self.answering: dict[int, str] = {}  # problem -> the subquestion QA is answering now
        self.retries: dict[int, int] = {}  # problem -> QG lines asked again at its current step
        self.waiting: deque[int] = deque()
        self.active: set[int] = set()
        self.ended: list[int] = []
        self.added = 0

    def add(self, question: str, oracle: Sequence[str] | None = None, settings: DecodeSettings | None = None) -> int:
        """Queue a problem (with `oracle`, its human subquestions in place of QG's; with `settings`, its
        own sampling and token budgets instead of the loop's); its number."""
        if oracle is None and self.asker is None:
            raise ValueError("iterative solving needs a QG engine unless oracle subquestions are given")
        i, self.added = self.added, self.added + 1
        self.questions[i], self.attempts[i] = question, Attempt()
        if settings is not None:
            self.settings_of[i] = settings
        if oracle is not None:
            self.oracle[i] = oracle
        self.waiting.append(i)
        return i

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.active)

    def running(self) -> list[int]:
        return sorted(self.active)

    def text(self, i: int) -> str:
        """Problem i's dialogue so far: its pairs, and the subquestion QA is answering."""
        attempt = self.attempts[i]
        asked = self.answering.get(i)
        return formats.pairs_text(attempt.steps) + (formats.qg_completion(asked) if asked is not None else "")

    def cancel(self, i: int) -> None:
        """Forget problem i wherever it is: its running completions stop and their room is freed."""
        if i in self.waiting:
            self.waiting.remove(i)
        for engine in self.engines:
            running = [t for t, (problem, _) in self.tickets[id(engine)].items() if problem == i]
            engine.cancel(running)
            for ticket in running:
                del self.tickets[id(engine)][ticket]
            if i in self.last[id(engine)]:
                engine.release([self.last[id(engine)].pop(i)])
        self.active.discard(i)
        self._forget(i)

    def step(self) -> list[tuple[int, Attempt]]:
        """Start waiting problems where there is room, advance the engines one step; the problems
        that ended, with their attempts."""
        started = time.perf_counter()
        while self.waiting and (self.width is None or len(self.active) < self.width):
            i = self.waiting.popleft()
            self.active.add(i)
            self._ask(i)
        for engine in self.engines:
            for ticket, completion in engine.step() if engine.busy else ():
                i, subquestion = self.tickets[id(engine)].pop(ticket)
                attempt = self.attempts[i]
                attempt.tokens += completion.tokens
                if completion.finish == TOO_LONG:  # its history outgrew the context: it ends as if at --max-steps
                    attempt.finish = TOO_LONG
                    self.ended.append(i)
                elif subquestion is None:  # QG's line: the next subquestion, or the end marker
                    self._answer(i, formats.parse_subquestion(completion.text))
                else:
                    del self.answering[i]
                    attempt.steps += (Step(subquestion, formats.parse_solution(completion.text)),)
                    attempt.calculator += completion.calculator
                    self.retries.pop(i, None)
                    self._ask(i)
        if self.active:
            share = (time.perf_counter() - started) / len(self.active)
            for i in self.active:
                self.attempts[i].seconds += share
        for engine in self.engines:  # the engines' caches of finished problems can go first
            engine.release([self.last[id(engine)].pop(i) for i in self.ended if i in self.last[id(engine)]])
        finished = []
        for i in self.ended:
            self.active.remove(i)
            attempt = self.attempts[i]
            _close(attempt)
            self._forget(i)
            finished.append((i, attempt))
        self.ended.clear()
        return finished

    def _forget(self, i: int) -> None:
        for table in (self.questions, self.settings_of, self.oracle, self.attempts, self.answering, self.retries):
            table.pop(i, None)

    def _ask(self, i: int, sampling: Sampling | None = None) -> None:
        if i in self.oracle:
            self._answer(i, _nth(self.oracle[i], len(self.attempts[i].steps)))
            return
        settings = self._settings(i)
        if (budget := self._line_budget(i)) == 0:
            return
        prompt = formats.qg_prompt(self.questions[i], self.attempts[i].steps)
        sampling = sampling or settings.qg_sampling or settings.sampling
        [ticket] = self.asker.submit([prompt], "line", budget, sampling, False)  # type: ignore[union-attr]
        self.tickets[id(self.asker)][ticket] = (i, None)
        self.last[id(self.asker)][i] = ticket

    def _settings(self, i: int) -> DecodeSettings:
        return self.settings_of.get(i, self.settings)

    def _line_budget(self, i: int) -> int:
        """The token budget of problem i's next line: `step_tokens`, or what its `max_tokens` leaves; at
        0 the problem has ended ("length"), its last solution its answer."""
        settings, attempt = self._settings(i), self.attempts[i]
        if settings.max_tokens is None:
            return settings.decode.step_tokens
        left = max(0, settings.max_tokens - attempt.tokens)
        if left == 0:
            attempt.finish = "length"
            self.ended.append(i)
        return min(settings.decode.step_tokens, left)

    def _answer(self, i: int, subquestion: str | None) -> None:
        # A problem at --max-steps is asked once more: if QG ends it there it is finished, not cut off.
        attempt, settings = self.attempts[i], self._settings(i)
        if subquestion is None or len(attempt.steps) == settings.decode.max_steps:
            attempt.finish = "end" if subquestion is None else "max_steps"
            self.ended.append(i)
            return
        repeated = _asked_before(subquestion, attempt.steps)
        if repeated and i not in self.oracle and self.retries.get(i, 0) < settings.decode.retry_repeats:
            # The greedy line is QG's likeliest, and a repeat: a sampled one may be the next subquestion.
            self.retries[i] = self.retries.get(i, 0) + 1
            attempt.retried += 1
            # Seeded by the retry's number: an engine that seeds each call alike (hf) samples anew each time.
            self._ask(i, Sampling(RETRY_TEMPERATURE, settings.sampling.seed + self.retries[i]))
            return
        if repeated and settings.decode.stop_on_repeat:
            # A greedy QG that repeats itself has entered a loop; its answer is the last new solution.
            attempt.finish = "repeat"
            self.ended.append(i)
            return
        if (budget := self._line_budget(i)) == 0:
            return
        prompt = formats.qa_prompt(self.questions[i], attempt.steps, subquestion)
        [ticket] = self.answerer.submit([prompt], "line", budget, settings.sampling, settings.decode.calculator)
        self.tickets[id(self.answerer)][ticket] = (i, subquestion)
        self.last[id(self.answerer)][i] = ticket
        self.answering[i] = subquestion


class OnePassLoop:
    """`answer`, `cot` or `unified` as a scheduler, the way `IterativeLoop` runs the pair: problems
    join and leave at any time, and on an engine that takes prompts while it decodes (llama.cpp)
    each one starts at the next step (continuous batching). `text(i)` is the complete lines it has
    written so far (llama.cpp; other engines show a completion only when it is done)."""

    def __init__(self, engine: Engine, settings: DecodeSettings):
        self.engine, self.settings = stepwise(engine, continuous=True), settings
        self.problem_of: dict[int, int] = {}  # ticket -> problem
        self.ticket_of: dict[int, int] = {}  # problem -> ticket
        self.added = 0

    def add(self, question: str, settings: DecodeSettings | None = None) -> int:
        """Start a problem (with `settings`, its own sampling and token budget instead of the loop's)."""
        i, self.added = self.added, self.added + 1
        s = settings or self.settings
        prompt = formats.problem_prompt(question)
        [ticket] = self.engine.submit([prompt], "answer", s.decode.max_new_tokens, s.sampling, s.decode.calculator)
        self.problem_of[ticket], self.ticket_of[i] = i, ticket
        return i

    @property
    def busy(self) -> bool:
        return bool(self.ticket_of)

    def running(self) -> list[int]:
        return sorted(self.ticket_of)

    def text(self, i: int) -> str:
        written = getattr(self.engine, "text_so_far", None)
        text = written(self.ticket_of[i]) if written is not None and i in self.ticket_of else ""
        return text[: text.rfind("\n") + 1]

    def cancel(self, i: int) -> None:
        ticket = self.ticket_of.pop(i, None)
        if ticket is not None:
            self.engine.cancel([ticket])
            del self.problem_of[ticket]

    def step(self) -> list[tuple[int, Attempt]]:
        done = self.engine.step() if self.engine.busy else []
        finished = []
        for ticket, completion in done:
            i = self.problem_of.pop(ticket)
            del self.ticket_of[i]
            finished.append((i, one_pass_attempt(completion)))
        # Nothing continues a one-pass completion: its cache can go before the ones parked longest ago.
        self.engine.release([ticket for ticket, _ in done])
        return finished


def _close(attempt: Attempt) -> None:
    """The finished attempt's text and answer: the pairs (plus the end marker) and the last solution."""
    attempt.output = formats.pairs_text(attempt.steps) + (formats.END_MARKER if attempt.finish == "end" else "")
    attempt.answer_text = attempt.steps[-1].answer if attempt.steps else ""


def _asked_before(subquestion: str, steps: Sequence[Step]) -> bool:
    key = formats.step_key(Step(subquestion, ""))
    return any(formats.step_key(step) == key for step in steps)


def _nth(subquestions: Sequence[str], n: int) -> str | None:
    return subquestions[n] if n < len(subquestions) else None
