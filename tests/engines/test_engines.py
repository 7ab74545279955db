"""Engines: batched decoding equals one-at-a-time decoding, completions stop where their layout ends,
the calculator writes annotation values, llama.cpp on the exported GGUF matches transformers, and a
prompt too long for an engine's context is marked "too long" without stopping the others (or a solve)."""

import contextlib
import json

import pytest

from socratic.commands.solve import SolveConfig, run_solve
from socratic.core.config import build
from socratic.core.jsonl import read_jsonl
from socratic.core.records import Prediction, Problem, Step
from socratic.engines import GREEDY, Completion, Decoding, HFEngine, LlamaCppEngine, Sampling
from socratic.engines.base import fits, too_long
from socratic.llamacpp.lookup import PromptLookup
from socratic.solving.loops import DecodeOptions, solve_iterative, solve_one_pass
from socratic.solving.predictions import to_prediction
from socratic.tasks import load_task
from socratic.text import formats
from socratic.weights.gguf_io import export_gguf


@pytest.fixture(scope="module")
def prompts():
    # Different lengths, so the batch is left-padded and rows finish at different steps.
    questions = [p.question for p in load_task("gsm8k").load("test", limit=5)] + ["What is 2 + 3?"]
    return [formats.problem_prompt(q) + "Q: What is the first step?\nA:" for q in questions]


def test_batched_greedy_equals_one_at_a_time(any_engine, kind, prompts):
    batched = any_engine.complete(prompts, "line", max_new_tokens=24, calculator=True)
    single = [any_engine.complete([p], "line", max_new_tokens=24, calculator=True)[0] for p in prompts]
    assert batched == single
    assert {c.finish for c in batched} <= {"stop", "eos", "length"}
    if kind == "tiny":  # pinned on the tiny decoder only: SmolLM2's finishes on these prompts are not
        assert {c.finish for c in batched} == {"stop", "length"}, "rows finish at different steps"


def test_completions_stop_where_the_layout_ends(any_engine, kind, prompts):
    completions = any_engine.complete(prompts, "line", max_new_tokens=24)
    if kind == "tiny":  # the tiny decoder is known to end some lines: the "stop" branch below is taken
        assert "stop" in {c.finish for c in completions}
    for completion in completions:
        if completion.finish == "stop":
            assert completion.text.endswith("\n") and completion.text.count("\n") == 1
        else:
            assert "\n" not in completion.text
        assert completion.tokens <= 24
    long = any_engine.complete(prompts[:2], "answer", max_new_tokens=5)
    assert all(c.finish in ("length", "eos", "stop") and c.tokens <= 5 for c in long)


def test_calculator_writes_the_value_of_an_open_annotation(any_engine):
    tokenizer, eos = any_engine.tokenizer, any_engine.eos
    state = Decoding(tokenizer, "line", 64, calculator=True, eos=eos)
    for token in tokenizer.encode("A: 12 eggs cost 12*3 = <<12*3=", add_special_tokens=False):
        state.add(token)
    assert tokenizer.decode(list(state.forced)) == "36>>"
    assert state.calculator_writes == 1
    off = Decoding(tokenizer, "line", 64, calculator=False, eos=eos)
    for token in tokenizer.encode("A: 12*3 = <<12*3=", add_special_tokens=False):
        off.add(token)
    assert not off.forced


@contextlib.contextmanager
def writing_equals(engine):
    """A hook that makes the engine's model write "=" at every step."""
    [equals] = engine.tokenizer.encode("=", add_special_tokens=False)

    def always_equals(module, args, output):
        output.logits[..., equals] += 1e4

    hook = engine.model.register_forward_hook(always_equals)
    try:
        yield
    finally:
        hook.remove()


def test_calculator_forces_the_value_while_decoding(any_engine, kind):
    # Few-shot annotations make SmolLM2 write "=" after the open expression (the tiny model is made to
    # by a hook); the value after it is the calculator's, in the batched loop as in the one-at-a-time one.
    prompt = "A: 2+2 = <<2+2=4>>4\nA: 3+5 = <<3+5=8>>8\nA: 1787+2694 = <<1787+2694"
    with writing_equals(any_engine) if kind == "tiny" else contextlib.nullcontext():
        on = any_engine.complete([prompt, "A: 1 + 1 ="], "line", 12, calculator=True)
        off = any_engine.complete([prompt], "line", 12, calculator=False)[0]
    assert on[0].text.startswith("=4481>>") and on[0].calculator == 1
    assert not off.text.startswith("=4481>>") and off.calculator == 0
    if kind == "tiny":  # the hooked model writes only "=": SmolLM2 may open an annotation of its own here
        assert on[1].calculator == 0, "no open annotation, nothing to compute"


def test_sampling_is_seeded(any_engine, prompts):
    first = any_engine.complete(prompts[:3], "line", 12, Sampling(temperature=1.0, seed=3))
    again = any_engine.complete(prompts[:3], "line", 12, Sampling(temperature=1.0, seed=3))
    other = any_engine.complete(prompts[:3], "line", 12, Sampling(temperature=1.0, seed=4))
    assert first == again and first != other


def test_llamacpp_on_the_exported_gguf_matches_transformers(any_llamacpp, any_engine, kind, prompts):
    # The tiny decoder's export is `export_gguf` on a tiny template (rotary permutation included). On it,
    # one thread: llama.cpp's threads wait for each other, slow on a loaded CPU for a tiny model.
    ours = any_llamacpp().complete(prompts, "line", max_new_tokens=24, calculator=True)
    theirs = any_engine.complete(prompts, "line", max_new_tokens=24, calculator=True)
    if kind == "tiny":  # pinned on the tiny decoder only: SmolLM2's finishes on these prompts are not
        assert {c.finish for c in theirs} == {"stop", "length"}, "the tiny decoder ends some lines, not all"
    # Float32 on both sides; summation order differs, so allow one near-tie divergence.
    assert sum(a.text == b.text for a, b in zip(ours, theirs, strict=True)) >= len(prompts) - 1


def test_llamacpp_continues_parked_sequences_instead_of_recomputing_them(any_llamacpp, prompts):
    # The iterative loop's pattern: every call repeats each problem's history plus a new line. With
    # fewer slots than prompts, some parked sequences are given away and their prompts start afresh.
    fresh = any_llamacpp(batch_size=8, keep_cache=False)
    kept = any_llamacpp(batch_size=8)
    crowded = any_llamacpp(batch_size=4)
    histories = list(prompts)
    for _ in range(3):
        expected = fresh.complete(histories, "line", max_new_tokens=12)
        for engine in (kept, crowded):
            continued = engine.complete(histories, "line", max_new_tokens=12)
            # Cached cells were computed in other batches (other float summation order): allow a near-tie.
            assert sum(a.text == b.text for a, b in zip(expected, continued, strict=True)) >= len(prompts) - 1
        histories = [h + c.text.rstrip("\n") + "\nQ: And then?\nA:" for h, c in zip(histories, expected, strict=True)]
    assert kept.tokens_evaluated < 0.5 * fresh.tokens_evaluated
    assert kept.tokens_evaluated < crowded.tokens_evaluated < fresh.tokens_evaluated
    assert len(kept.parked) == len(prompts), "finished sequences stay parked for the next call"


def test_llamacpp_kv_cache_grows_to_what_the_jobs_need_and_writes_the_same_text_tiny(tiny_decoder, tiny_gguf, prompts):
    # Issue 32: the cache opens when the first jobs start, with room for what they need (in steps of 256
    # positions a sequence), and grows only when a later job's prompt plus its token budget needs more, the
    # parked sequences' cells copied across: the text and the reuse of parked cells are those of a cache
    # allocated at full size when the engine opened.
    grown, full = (
        LlamaCppEngine(tiny_gguf, tokenizer=tiny_decoder, batch_size=4, context_per_sequence=1000, threads=1, grow=g)
        for g in (True, False)
    )
    assert (grown.room, full.room, grown.context_per_sequence) == (0, 1024, 1024), "no cache before a job"
    histories, rooms = list(prompts), []
    for budget in (12, 12, 200):
        need = max(len(grown.tokenizer(h)["input_ids"]) for h in histories) + budget
        texts = [[c.text for c in e.complete(histories, "line", max_new_tokens=budget)] for e in (grown, full)]
        assert texts[0] == texts[1]
        assert need <= grown.room < full.room, f"room for the longest job ({need} positions), not the most allowed"
        assert grown.room - need < 256, "no more room than the jobs need, in steps of 256"
        rooms.append(grown.room)
        histories = [h + t.rstrip("\n") + "\nQ: And then?\nA:" for h, t in zip(histories, texts[0], strict=True)]
    assert rooms[0] < rooms[-1], "the last jobs needed more than the first ones: the cache grew"
    assert grown.prompt_tokens_evaluated == full.prompt_tokens_evaluated, "parked cells kept across the growth"


def test_llamacpp_takes_prompts_submitted_while_others_decode(any_llamacpp, prompts):
    # The iterative loop's pattern: a prompt arrives while the engine is busy with others.
    alone = any_llamacpp(lookup=0)
    expected = [alone.complete([p], "line", max_new_tokens=16)[0] for p in prompts]
    engine = any_llamacpp(batch_size=4, lookup=0)
    tickets = engine.submit(prompts[:3], "line", 16)
    done = dict(engine.step())
    tickets += engine.submit(prompts[3:], "line", 16)  # more prompts than sequences: some wait
    while engine.busy:
        done |= dict(engine.step())
    assert sorted(done) == sorted(tickets)
    got = [done[t] for t in tickets]
    # Batches of other compositions round differently: allow one near-tie divergence.
    assert sum(a == b for a, b in zip(expected, got, strict=True)) >= len(prompts) - 1
    # A prompt too long for a sequence, submitted while others decode, comes back at the next step.
    assert engine.context_per_sequence == 1024
    tickets = engine.submit([prompts[0], "word " * 2000], "line", 16)
    done = dict(engine.step())
    assert done == {tickets[1]: too_long()}
    while engine.busy:
        done |= dict(engine.step())
    assert done[tickets[0]] == got[0] and done[tickets[1]] == too_long()


def test_prompt_lookup_drafts_what_followed_the_latest_earlier_occurrence():
    lookup = PromptLookup([5, 6, 7, 8, 1, 5, 6, 9], ngram=2)
    assert lookup.draft(3) == []  # the last two tokens (6, 9) never occurred before
    lookup.extend([4, 5, 6])
    assert lookup.draft(3) == [9, 4, 5]  # (5, 6) last occurred before 9, not before 7
    assert lookup.draft(10) == [9, 4, 5, 6]  # a draft stops where the text ends
    assert lookup.draft(0) == []


@pytest.mark.slow
def test_llamacpp_lookup_drafts_keep_the_text_token_by_token_decoding_gives(smollm2, smollm2_gguf, prompts):
    # A prompt that invites copying, so drafts are fed and kept, next to ones where they mostly fail.
    counting = "Count: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10\nCount: 1, 2, 3"
    plain = LlamaCppEngine(smollm2_gguf, tokenizer=smollm2, lookup=0)
    drafting = LlamaCppEngine(smollm2_gguf, tokenizer=smollm2)
    batch = [counting, *prompts[:3]]
    expected = plain.complete(batch, "line", max_new_tokens=24, calculator=True)
    got = drafting.complete(batch, "line", max_new_tokens=24, calculator=True)
    # Checking k drafts computes k+1 rows in one call (another float summation order): allow a near-tie.
    assert sum(a == b for a, b in zip(expected, got, strict=True)) >= len(batch) - 1
    assert got[0].text.startswith(", 4, 5, 6, 7")
    assert plain.drafts_fed == 0
    assert drafting.drafts_accepted >= 6, "the counting line is copied from the prompt"
    assert drafting.drafts_accepted <= drafting.drafts_fed
    assert drafting.tokens_evaluated > plain.tokens_evaluated  # rejected drafts cost compute, never text


def test_llamacpp_lookup_drafts_keep_the_text_token_by_token_decoding_gives_tiny(
    tiny_model, tiny_template, prompts, tmp_path
):
    # Fast twin of the test above. The tiny training model (small tied weights) repeats its last token,
    # "3" here: drafts copied from its own output are kept, and the ones copied from "33" earlier in the
    # prompt (followed by 5, 7 and 4) are rejected.
    echo = export_gguf(tiny_model, tiny_template, tmp_path / "echo.gguf")
    codes = "Codes: 335, 337 and 3341\nCount: 1, 2, 3"
    plain = LlamaCppEngine(echo, tokenizer=tiny_model, lookup=0, threads=1)
    drafting = LlamaCppEngine(echo, tokenizer=tiny_model, threads=1)
    batch = [codes, *prompts[:3]]
    expected = plain.complete(batch, "line", max_new_tokens=24, calculator=True)
    got = drafting.complete(batch, "line", max_new_tokens=24, calculator=True)
    assert got == expected
    assert got[0].text.startswith("3" * 12)
    assert plain.drafts_fed == 0
    assert 6 <= drafting.drafts_accepted < drafting.drafts_fed, "drafts are kept and rejected"
    assert drafting.tokens_evaluated > plain.tokens_evaluated  # rejected drafts cost compute, never text


@pytest.mark.parametrize(
    ("kind", "weights_type"),
    # bf16 on SmolLM2 only: the tiny decoder's f16 and q8_0 exports check the rounding of the fast tier.
    [
        ("tiny", "f16"),
        ("tiny", "q8_0"),
        pytest.param("real", "f16", marks=pytest.mark.slow),
        pytest.param("real", "bf16", marks=pytest.mark.slow),
        pytest.param("real", "q8_0", marks=pytest.mark.slow),
    ],
)
def test_smaller_gguf_exports_run(
    kind, weights_type, any_engine, any_decoder, any_template, any_gguf, any_llamacpp, prompts, tmp_path
):
    small = export_gguf(any_decoder, any_template, tmp_path / f"s.{weights_type}.gguf", weights_type)
    float32_bytes = 4 * sum(p.numel() for p in any_engine.model.parameters())  # tied weights counted once
    if kind == "tiny":
        # The tokenizer in the header is a large share of a tiny model's file: compare the bytes saved.
        assert any_gguf.stat().st_size - small.stat().st_size > 0.4 * float32_bytes
    else:
        assert small.stat().st_size < 0.6 * float32_bytes
    ours = any_llamacpp(small).complete(prompts, "line", max_new_tokens=12)
    theirs = any_engine.complete(prompts, "line", max_new_tokens=12)
    # Rounded weights change some greedy choices, not most of them: most first choices agree (one changed
    # choice changes the rest of its reply), and some whole replies; most of SmolLM2's. (The tiny random
    # decoder's q8_0 export changed 2 of 6 first choices and kept 2 of 6 whole replies.) A wrong layout
    # agrees on none.
    pairs = list(zip(ours, theirs, strict=True))
    assert sum(a.text.split()[:1] == b.text.split()[:1] for a, b in pairs) >= len(prompts) // 2
    assert sum(a.text == b.text for a, b in pairs) >= (len(prompts) // 2 if kind == "real" else 1)


# --- prompts too long for an engine's context ------------------------------------------------------


class ShortContext:
    """A deterministic engine whose context holds `context` characters (prompt plus budget): QG asks
    "How many?", QA answers "2", one-pass writes the answer line; a longer prompt is "too long"."""

    def __init__(self, context: int):
        self.context = context

    def complete(self, prompts, until, max_new_tokens, sampling=GREEDY, calculator=False, progress=None):
        return [self._complete(p, until, max_new_tokens) for p in prompts]

    def _complete(self, prompt: str, until: str, max_new_tokens: int) -> Completion:
        if not fits(len(prompt), max_new_tokens, self.context, "fake"):
            return too_long()
        if until == "answer":
            return Completion(formats.answer_line("2"), 3, "stop")
        asked = prompt.rsplit("\n", 2)[-2].startswith(formats.SUBQUESTION_PREFIX)  # QA's prompt ends in a question
        return Completion(formats.qa_completion("2") if asked else formats.qg_completion("How many?"), 3, "stop")


def test_a_problem_too_long_for_the_context_ends_too_long_and_the_others_go_on():
    short = "Tom has 1 apple and gets 1 more. How many apples does he have?"
    # Fits until its second QA prompt (one pair of history plus the question); `short` never outgrows it.
    medium = short + " He counts them twice, slowly, and then counts them once more."
    config = DecodeOptions(max_steps=2, step_tokens=1).settings()
    step = Step("How many?", "2")
    context = len(formats.qa_prompt(medium, [step], "How many?")) + config.decode.step_tokens - 1
    assert len(formats.qg_prompt(short, [step, step])) + config.decode.step_tokens <= context
    questions = [short, "word " * 200, medium]
    engine = ShortContext(context)
    ended = []
    attempts = solve_iterative(engine, engine, questions, config, on_finished=lambda i, a: ended.append(i))
    assert sorted(ended) == [0, 1, 2], "every problem ends, once"
    done, long, grown = attempts
    assert (done.finish, len(done.steps), done.answer_text) == ("max_steps", 2, "2")
    assert (long.finish, long.steps, long.output, long.answer_text) == ("too long", (), "", "")
    # Cut off like a problem at --max-steps: its last solution is its answer.
    assert (grown.finish, grown.steps, grown.answer_text) == ("too long", (step,), "2")
    # Human subquestions: QA's prompts are the ones that grow too long.
    oracle = [["How many?"] * 3] * 3
    guided = solve_iterative(None, engine, questions, config, oracle=oracle)
    assert [(a.finish, a.steps) for a in guided] == [(a.finish, a.steps) for a in attempts]


def test_a_one_pass_problem_too_long_for_the_context_is_saved_as_unanswered(problems):
    config = DecodeOptions(max_new_tokens=8).settings()
    engine = ShortContext(200)
    short, long = solve_one_pass(engine, ["What is 1 + 1?", "word " * 200], config)
    assert (short.finish, short.answer_text) == ("answer", "2")
    assert (long.finish, long.output, long.answer_text, long.tokens) == ("too long", "", "", 0)
    prediction = to_prediction(problems[0], [long], "unified", load_task("gsm8k"), 0.0)
    assert prediction.answer is None and not prediction.correct and prediction.meta["finish"] == "too long"


def test_hf_engine_marks_prompts_past_the_models_positions_and_decodes_the_rest(tiny_model):
    engine = HFEngine(tiny_model, batch_size=2)
    assert engine.max_positions == 1024
    prompts = ["Problem: 1 + 1\n", "word " * 1100, "Problem: 2 + 3 = 5. 5 * 4\n", "word " * 1010]
    done = []
    got = engine.complete(prompts, "line", 16, progress=done.append)
    assert got[1] == got[3] == too_long(), "the last prompt fits, its 16 new tokens do not"
    assert [got[0], got[2]] == engine.complete([prompts[0], prompts[2]], "line", 16)
    assert sum(done) == len(prompts)


@pytest.mark.slow
def test_solve_on_llamacpp_records_a_question_too_long_for_its_context_and_goes_on(
    make_student, smollm2, smollm2_gguf, tmp_path
):
    # Issue 18: a 900-token question stopped `socratic solve --engine llamacpp` ("does not fit")
    # after the first saved chunk, and again on every rerun.
    from transformers import AutoTokenizer

    short = load_task("gsm8k").load("test", limit=4)
    long = " ".join([short[1].question] * 35)
    tokens = len(AutoTokenizer.from_pretrained(smollm2)(formats.problem_prompt(long))["input_ids"])
    # `solve` asks llama.cpp for 768 + 128 positions per sequence here, and is given 1,024.
    assert 850 < tokens < 1000 and tokens + 128 > 1024
    problems = [short[0], Problem("", "", long, short[1].answer), *short[1:]]
    data = tmp_path / "long.jsonl"
    data.write_text("".join(json.dumps({"question": p.question, "answer": p.answer}) + "\n" for p in problems))
    out = tmp_path / "predictions.jsonl"
    config = dict(method="unified", model=str(make_student("unified")), dataset=str(data), engine="llamacpp")
    config |= dict(batch_size=2, chunk=2, max_new_tokens=128, out=str(out))
    run_solve(build(SolveConfig, {**config, "limit": 3}))  # the long question is in the first chunk
    first = list(read_jsonl(out, Prediction))
    assert [p.meta["finish"] == "too long" for p in first] == [False, True, False]
    assert first[1].answer is None and first[1].meta["tokens"] == 0
    assert first[0].meta["tokens"] > 0 and first[2].meta["tokens"] > 0, "the rest of its chunk decoded"
    run_solve(build(SolveConfig, config))  # the rerun goes on with the problems after it
    saved = list(read_jsonl(out, Prediction))
    assert saved[:3] == first and len(saved) == len(problems)
    # Iterative, in rounds and handed over line by line: the long problem ends "too long" at once,
    # the others as usual, and nothing of a finished problem stays parked.
    iterative = DecodeOptions(max_steps=2, step_tokens=8).settings()
    questions = [p.question for p in problems]
    for continuous in (False, True):
        qg, qa = (LlamaCppEngine(smollm2_gguf, smollm2, batch_size=2, context_per_sequence=512) for _ in range(2))
        attempts = solve_iterative(qg, qa, questions, iterative, width=2, continuous=continuous)
        assert [a.finish == "too long" for a in attempts] == [False, True, False, False, False]
        assert attempts[1].steps == () and attempts[1].answer_text == ""
        assert not qg.busy and not qa.busy
        assert not (continuous and (qg.parked or qa.parked)), "a finished problem's sequences are freed at once"
