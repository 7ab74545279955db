"""The solving loops with a real model (SmolLM2-135M standing in for trained students): the
iterative loop finishes, respects its limits, gives the same results batched and one problem at a
time, lets one problem end early without disturbing the others, and on llama.cpp continues each
problem from its cache (in rounds or handing each line over as it ends)."""

import dataclasses

import pytest

from socratic.engines import GREEDY, Completion
from socratic.solving.loops import DecodeOptions, solve_iterative
from socratic.text import formats


def test_iterative_loop_batched_equals_one_problem_at_a_time(any_engine, problems):
    config = DecodeOptions(max_steps=2, step_tokens=16).settings()
    questions = [p.question for p in problems]
    batched = solve_iterative(any_engine, any_engine, questions, config)
    single = [solve_iterative(any_engine, any_engine, [q], config)[0] for q in questions]
    assert batched == single
    for attempt in batched:
        assert len(attempt.steps) <= 2
        assert attempt.finish in ("end", "max_steps")
        assert attempt.finish == "end" or len(attempt.steps) == 2


def test_a_rolling_active_set_gives_the_same_attempts_and_reports_each_problem_once(any_engine, problems):
    config = DecodeOptions(max_steps=3, step_tokens=8).settings()
    questions = [p.question for p in problems]
    # Problem 0 ends after one step: its place goes to problem 2 while problem 1 is still going.
    oracle = [["What is asked?"]] + [["What is given?", "What is asked?", "What is the answer?"]] * 3
    together = solve_iterative(None, any_engine, questions, config, oracle=oracle)
    reported = []
    rolling = solve_iterative(
        None, any_engine, questions, config, oracle=oracle, width=2, on_finished=lambda i, a: reported.append((i, a))
    )
    assert rolling == together
    assert [i for i, _ in reported] == [0, 1, 2, 3]
    assert all(attempt.output and attempt.seconds > 0 for _, attempt in reported), "closed before it is reported"


def test_iterative_loop_on_llamacpp_continues_each_problem_from_its_cache(any_llamacpp, problems):
    config = DecodeOptions(max_steps=3, step_tokens=16).settings()
    questions = [p.question for p in problems]
    # Oracle subquestions: the base model does not follow QG's layout, and QA's calls are what repeat.
    oracle = [["How many are there at first?", "How many are added?", "How many in all?"]] * len(questions)
    runs = {}
    for keep_cache in (True, False):
        qa = any_llamacpp(batch_size=4, keep_cache=keep_cache)
        runs[keep_cache] = (solve_iterative(None, qa, questions, config, oracle=oracle), qa.tokens_evaluated)
    (cached, cached_tokens), (fresh, fresh_tokens) = runs[True], runs[False]
    assert [len(a.steps) for a in cached] == [3] * len(questions)
    # Cells computed in other batches round differently: allow one near-tie divergence.
    assert sum(a.output == b.output for a, b in zip(cached, fresh, strict=True)) >= len(questions) - 1
    assert cached_tokens < 0.7 * fresh_tokens


def test_iterative_loop_on_llamacpp_can_hand_each_line_to_the_other_model_as_it_ends(
    any_llamacpp, problems, monkeypatch
):
    # The model, asked for a subquestion, writes an empty line (the end); started on one, it goes on,
    # so every problem runs its steps through both engines.
    qg_prompt = formats.qg_prompt
    monkeypatch.setattr(formats, "qg_prompt", lambda question, steps: qg_prompt(question, steps) + "Q: How many")
    config = DecodeOptions(max_steps=2, step_tokens=8).settings()
    questions = [p.question for p in problems[:3]]
    qg, qa = (any_llamacpp(batch_size=4) for _ in range(2))
    flowing = solve_iterative(qg, qa, questions, config, continuous=True)
    assert not qg.parked and not qa.parked, "a finished problem's sequences are freed at once"
    alone = [solve_iterative(qg, qa, [q], config)[0] for q in questions]
    rounds = solve_iterative(qg, qa, questions, config)
    # One engine object as both QG and QA: each finished line still goes to the right role.
    shared = solve_iterative(qg, qg, questions, config, continuous=True)
    assert [len(a.steps) for a in flowing] == [2] * len(questions), "the model's lines all read as steps"
    for other in (alone, rounds, shared):
        # Batches of other compositions round differently: allow one near-tie divergence.
        assert sum(a.output == b.output for a, b in zip(flowing, other, strict=True)) >= len(questions) - 1
    assert not qg.busy and not qa.busy


def test_one_problem_ending_early_does_not_disturb_the_others(any_engine, problems):
    config = DecodeOptions(max_steps=3, step_tokens=8).settings()
    questions = [p.question for p in problems]
    # Oracle subquestions of different counts: problem 0 stops after one step, the rest go on.
    oracle = [["What is asked?"]] + [["What is given?", "What is asked?", "What is the answer?", "Why?"]] * 3
    together = solve_iterative(None, any_engine, questions, config, oracle=oracle)
    alone = [
        solve_iterative(None, any_engine, [q], config, oracle=[o])[0] for q, o in zip(questions, oracle, strict=True)
    ]
    assert together == alone
    assert [len(a.steps) for a in together] == [1, 3, 3, 3]
    assert [a.finish for a in together] == ["end", "max_steps", "max_steps", "max_steps"]
    assert [s.question for s in together[1].steps] == oracle[1][:3]


def test_stop_on_repeat_ends_a_problem_at_its_first_repeated_subquestion(tiny_engine, problems):
    questions = [p.question for p in problems[:2]]
    # Problem 0 asks its first subquestion again (up to case and spacing); problem 1 never repeats.
    oracle = [["What is given?", "What is asked?", "what is  GIVEN?", "Why?"], ["What is given?", "Why?"]]
    plain = solve_iterative(
        None, tiny_engine, questions, DecodeOptions(max_steps=3, step_tokens=8).settings(), oracle=oracle
    )
    stopping = DecodeOptions(max_steps=3, step_tokens=8, stop_on_repeat=True).settings()
    stopped = solve_iterative(None, tiny_engine, questions, stopping, oracle=oracle)
    assert [len(a.steps) for a in plain] == [3, 2] and plain[0].finish == "max_steps"
    assert [a.finish for a in stopped] == ["repeat", "end"]
    assert stopped[0].steps == plain[0].steps[:2]  # the repeat is not answered
    assert stopped[0].answer_text == stopped[0].steps[-1].answer  # the last new solution
    assert stopped[1] == plain[1]


def test_a_problem_joins_a_running_loop_and_another_leaves_it_tiny(tiny_decoder, tiny_gguf, problems):
    """`IterativeLoop` as `socratic serve` drives it on llama.cpp: a problem added while others run
    gets the attempt it gets alone, and a cancelled one frees its sequence at once."""
    from socratic.engines import LlamaCppEngine
    from socratic.solving.loops import IterativeLoop

    engine = LlamaCppEngine(tiny_gguf, tokenizer=tiny_decoder, threads=1, batch_size=4, context_per_sequence=512)
    config = DecodeOptions(max_steps=2, step_tokens=8).settings()
    questions = [p.question for p in problems[:3]]
    alone = [solve_iterative(engine, engine, [q], config, continuous=True)[0] for q in questions]
    loop = IterativeLoop(engine, engine, config, continuous=True)
    first, leaving = loop.add(questions[0]), loop.add(questions[1])
    for _ in range(12):  # a QG line takes at most 8 steps (tokens), or the problem ends
        assert loop.step() == []
        if loop.text(first):
            break
    assert loop.text(first).startswith("Q: ")  # its first subquestion is out: QA is answering it
    loop.cancel(leaving)
    joining = loop.add(questions[2])
    finished = {}
    while loop.busy:
        finished.update(loop.step())
    assert set(finished) == {first, joining}
    assert (finished[first], finished[joining]) == (alone[0], alone[2])
    assert not engine.busy and not engine.slots


class Repeater:
    """A QG that, greedy, asks its first subquestion again at every step and, sampled, asks a new one
    only on its `fresh_after`-th sample of a step; QA answers "2"; QG ends after 3 pairs."""

    def __init__(self, fresh_after: int):
        self.fresh_after, self.samples = fresh_after, 0

    def complete(self, prompts, until, max_new_tokens, sampling=GREEDY, calculator=False, progress=None):
        return [self._complete(p, sampling) for p in prompts]

    def _complete(self, prompt: str, sampling) -> Completion:
        lines = prompt.splitlines()
        if lines[-1].startswith(formats.SUBQUESTION_PREFIX):  # QA's prompt ends in the subquestion
            return Completion(formats.qa_completion("2"), 2, "stop")
        asked = [line for line in lines if line.startswith(formats.SUBQUESTION_PREFIX)]
        if len(asked) == 3:
            return Completion(formats.qg_completion(None), 1, "stop")
        if not asked:
            return Completion(formats.qg_completion("What is first?"), 4, "stop")
        if sampling.temperature == 0:
            self.samples = 0
            return Completion(formats.qg_completion("What is first?"), 4, "stop")
        self.samples += 1
        line = f"What is step {len(asked) + 1}?" if self.samples >= self.fresh_after else "what is FIRST?"
        return Completion(formats.qg_completion(line), 4, "stop")


def test_retry_repeats_asks_qg_again_sampled_until_a_new_subquestion(problems):
    question = [problems[0].question]
    plain = solve_iterative(Repeater(1), Repeater(1), question, DecodeOptions(max_steps=4).settings())[0]
    assert [s.question for s in plain.steps] == ["What is first?"] * 3 and plain.finish == "end"
    assert plain.retried == 0

    retrying = DecodeOptions(max_steps=4, retry_repeats=2).settings()
    found = solve_iterative(Repeater(2), Repeater(2), question, retrying)[0]  # the second sample is new
    assert [s.question for s in found.steps] == ["What is first?", "What is step 2?", "What is step 3?"]
    assert found.finish == "end" and found.retried == 2 * 2

    # Every retry repeats too: the repeat is answered, or with --stop-on-repeat ends the problem.
    exhausted = solve_iterative(
        Repeater(9), Repeater(9), question, DecodeOptions(max_steps=2, retry_repeats=2).settings()
    )[0]
    assert [s.question for s in exhausted.steps] == ["What is first?", "what is FIRST?"] and exhausted.retried == 2
    stopping = DecodeOptions(max_steps=4, retry_repeats=2, stop_on_repeat=True).settings()
    stopped = solve_iterative(Repeater(9), Repeater(9), question, stopping)[0]
    assert (stopped.finish, len(stopped.steps), stopped.retried) == ("repeat", 1, 2)

    # Human subquestions are never asked again.
    oracle = [["What is given?", "what is GIVEN?"]]
    human = solve_iterative(
        None, Repeater(1), question, DecodeOptions(max_steps=3, retry_repeats=2).settings(), oracle=oracle
    )[0]
    assert [s.question for s in human.steps] == oracle[0] and human.retried == 0


class SamplingRecorder(Repeater):
    """`Repeater`, noting the sampling each QG and QA line was asked with."""

    def __init__(self):
        super().__init__(fresh_after=1)
        self.asked: dict[str, list] = {"qg": [], "qa": []}

    def _complete(self, prompt: str, sampling) -> Completion:
        qa = prompt.splitlines()[-1].startswith(formats.SUBQUESTION_PREFIX)
        self.asked["qa" if qa else "qg"].append(sampling)
        return super()._complete(prompt, sampling)


def test_qg_sampling_samples_the_question_generator_alone(problems):
    from socratic.engines import Sampling

    engine = SamplingRecorder()
    hot = Sampling(0.9, seed=3)
    settings = dataclasses.replace(DecodeOptions(max_steps=4).settings(), qg_sampling=hot)
    [attempt] = solve_iterative(engine, engine, [problems[0].question], settings)
    assert attempt.finish == "end" and len(attempt.steps) == 3
    assert engine.asked["qg"] == [hot] * 4, "every QG line, the end marker's too, is sampled"
    assert engine.asked["qa"] == [GREEDY] * 3, "QA answers greedily"
    # A retried repeat keeps its own temperature and seed, whatever QG's sampling is.
    retrying = SamplingRecorder()
    retrying.fresh_after = 2
    solve_iterative(retrying, retrying, [problems[0].question], DecodeOptions(max_steps=4, retry_repeats=1).settings())
    assert {s.temperature for s in retrying.asked["qg"]} == {0.0, 0.7}


@pytest.mark.parametrize("engine_name", ["hf", "llamacpp"])
def test_sampled_qg_writes_different_decompositions_of_one_problem_tiny(
    engine_name, tiny_engine, tiny_decoder, tiny_gguf, problems
):
    from socratic.engines import LlamaCppEngine, Sampling

    engine = tiny_engine if engine_name == "hf" else LlamaCppEngine(tiny_gguf, tokenizer=tiny_decoder, threads=1)
    question = problems[0].question
    greedy = solve_iterative(engine, engine, [question] * 3, DecodeOptions(max_steps=2, step_tokens=8).settings())
    assert greedy[0] == greedy[1] == greedy[2]
    settings = dataclasses.replace(
        DecodeOptions(max_steps=2, step_tokens=8).settings(), qg_sampling=Sampling(1.0, seed=1)
    )
    sampled = solve_iterative(engine, engine, [question] * 3, settings)
    assert len({a.steps[0].question for a in sampled if a.steps}) > 1, "three decompositions, not one"
