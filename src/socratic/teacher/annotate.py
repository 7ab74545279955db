"""`socratic annotate`: a teacher decomposes training problems; chains with the right answer are kept.

    socratic annotate --dataset gsm8k --split train --style socratic --teacher human --out runs/gsm8k/chains.jsonl
    socratic annotate --dataset svamp --split train --teacher llamacpp:qwen2.5-coder-1.5b --limit 20 --samples 2
    socratic annotate --dataset svamp --teacher openai:http://127.0.0.1:8080/v1 --concurrency 8
    socratic annotate --dataset svamp --teacher llamacpp:qwen2.5-coder-0.5b --concurrency 8 --samples 4
    socratic annotate --config run.toml --out runs/chains.jsonl     # the [annotate] section of a config file

Reads `Problem`s, writes `Chain`s. Every teacher reply is appended to `<out>.replies.jsonl`
(flushed and fsynced) *before* it is used, keyed by problem, sample index and a hash of the exact
request (model, rendered prompt, sampling). A rerun of the same command skips what is cached, so a
run killed at any moment resumes without duplicates or losses; editing the prompt, the problem text
or the sampling invalidates exactly the replies they produced. The chains file is then rebuilt from
the cache: each reply is parsed with the students' own `formats` code and judged (kept, or rejected
as empty / too long / unparseable / no answer / wrong answer, listed in `<out>.rejected.jsonl`), and
a summary table, a manifest and optional exports (chat-messages JSONL, a Hugging Face `datasets`
folder) are written.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socratic.core import resume
from socratic.core.errors import RecordError, SocraticError
from socratic.core.jsonl import JsonlAppender, read_jsonl, write_jsonl
from socratic.core.manifest import git_commit, write_manifest
from socratic.core.records import Chain, Problem
from socratic.tasks import Task
from socratic.tasks.options import DataOptions
from socratic.teacher import human, prompts, shipped
from socratic.teacher.backends import (
    TEACHER_HELP,
    Backend,
    Reply,
    Request,
    RetryPolicy,
    Streaming,
    TeacherError,
    TeacherSampling,
    load_backend,
)
from socratic.teacher.outputs import (
    Judged,
    Prices,
    Tally,
    export,
    live_counts,
    rejected_rows,
    rejections,
    summary_table,
)
from socratic.text import formats

log = logging.getLogger(__name__)

REJECTIONS = ("empty", "too long", "unparseable", "no answer", "wrong answer", human.NOT_ALIGNED, shipped.NOT_SHIPPED)


@dataclass(frozen=True)
class AnnotateConfig:
    data: DataOptions = field(default_factory=DataOptions)
    style: str = field(
        default="socratic", metadata={"help": "socratic (subquestion/solution pairs) or cot", "choices": prompts.STYLES}
    )
    teacher: str = field(default="human", metadata={"help": TEACHER_HELP})
    out: str = field(default="runs/chains.jsonl", metadata={"help": "chains file to write"})
    samples: int = field(default=1, metadata={"help": "replies to sample per problem", "min": 1})
    temperature: float | None = field(
        default=None,
        metadata={"help": "sampling temperature (default: 0 for one sample, 0.7 for several)", "min": 0},
    )
    max_tokens: int = field(
        default=384, metadata={"help": "longest reply, in tokens; longer ones are 'too long'", "min": 1}
    )
    prompt: str | None = field(
        default=None, metadata={"help": "your own few-shot prompt file (JSON, see socratic/teacher/prompts/)"}
    )
    with_facts: bool = field(
        default=False, metadata={"help": "show the problem's facts to the teacher (StrategyQA, as in the paper)"}
    )
    keep: str = field(
        default="all",
        metadata={"help": "keep all correct distinct chains of a problem, or the first", "choices": ("all", "first")},
    )
    concurrency: int = field(
        default=4,
        metadata={"help": "requests in flight at once (HTTP teachers), replies decoded together (llamacpp:)", "min": 1},
    )
    timeout: float = field(
        default=120.0, metadata={"help": "seconds before one request is abandoned and retried", "above": 0}
    )
    max_retries: int = field(default=5, metadata={"help": "retries of a failed request (timeouts, 429, 5xx)", "min": 0})
    endpoint: str = field(
        default="chat", metadata={"help": "OpenAI endpoint: chat or completion", "choices": ("chat", "completion")}
    )
    batch_size: int = field(default=8, metadata={"help": "problems per batch (hf: teachers)", "min": 1})
    threads: int | None = field(
        default=None,
        metadata={"help": "CPU threads of an in-process teacher (llamacpp:, hf:; default: its usable cores)", "min": 1},
    )
    price_in: float = field(
        default=0.0, metadata={"help": "USD per million prompt tokens, for the cost estimate", "min": 0}
    )
    price_out: float = field(default=0.0, metadata={"help": "USD per million generated tokens", "min": 0})
    chat_jsonl: str | None = field(
        default=None, metadata={"help": "also export the kept chains as chat-messages JSONL"}
    )
    hf_dataset: str | None = field(
        default=None, metadata={"help": "also export them as a Hugging Face datasets folder"}
    )

    @property
    def sampling(self) -> TeacherSampling:
        temperature = self.temperature if self.temperature is not None else (0.0 if self.samples == 1 else 0.7)
        return TeacherSampling(temperature=temperature, max_tokens=self.max_tokens)

    @property
    def prices(self) -> Prices:
        return Prices(self.price_in, self.price_out)


def replies_path(out: Path) -> Path:
    return out.with_name(out.stem + ".replies.jsonl")


def rejected_path(out: Path) -> Path:
    return out.with_name(out.stem + ".rejected.jsonl")


def run_annotate(config: AnnotateConfig) -> Path:
    """Annotate, judge and write chains; return the chains file."""
    started = time.time()
    commit = git_commit()
    task, split, problems = config.data.load("train")
    out = Path(config.out)
    if config.teacher == "human":
        judged = {p.id: [(0, human.human_chain(p, config.style))] for p in problems}
        tally, model_name = Tally(), "human"
    elif config.teacher == "shipped":  # a teacher's chains from the package: no teacher to install
        judged = shipped.judged(problems, task.name, config.style)
        tally, model_name = Tally(), shipped.teacher_name(task.name, config.style)
    else:
        prompt = prompts.load(task.name, config.style, config.prompt, config.with_facts, task.answer_kind)
        backend = load_backend(
            config.teacher,
            config.endpoint,
            config.timeout,
            config.batch_size,
            RetryPolicy(max_retries=config.max_retries),
            config.concurrency,
            config.threads,
        )
        model_name = backend.model_name
        resume.claim(replies_path(out), _settings(config, task, split, model_name), "teacher replies")
        requests = {p.id: _requests(p, prompt, config.samples) for p in problems}
        cached, tally = _collect_replies(out, backend, config, problems, requests)
        judged = {
            p.id: [
                (k, _judge(cached[p.id, k], p, task, config.style, model_name))
                for k in range(config.samples)
                if (p.id, k) in cached
            ]
            for p in problems
        }
    chains = _keep(judged, config.keep)
    write_jsonl(out, chains)
    write_jsonl(rejected_path(out), rejected_rows(judged))
    title = f"annotate {task.name}/{split}, style {config.style}, teacher {model_name} -> {config.out}"
    summary = summary_table(
        title, config.keep, config.prices, problems, judged, chains, tally, model_name, time.time() - started
    )
    print(summary)
    write_manifest(
        out,
        "annotate",
        config,
        started,
        commit,
        teacher_model=model_name,
        problems=len(problems),
        chains=len(chains),
        tokens_in=tally.tokens_in,
        tokens_out=tally.tokens_out,
        rejections=dict(rejections(judged)),
        failed_requests=len(tally.failures),
    )
    export(chains, problems, config.style, config.chat_jsonl, config.hf_dataset)
    if tally.failures:
        raise SocraticError(
            f"{len(tally.failures)} teacher requests failed (first: {tally.failures[0]}); "
            f"everything else is saved in {replies_path(out)}: rerun the same command to retry them"
        )
    return out


def _settings(config: AnnotateConfig, task: Task, split: str, model: str) -> dict[str, Any]:
    """What shapes the reply cache (`resume.claim`). Not --samples, --limit or --offset: asking for more
    samples or problems extends the same cache."""
    return {
        **config.data.settings(task, split),
        "style": config.style,
        "model": model,
        "endpoint": config.endpoint,
        "prompt": config.prompt,
        "with_facts": config.with_facts,
        "sampling": dataclasses.asdict(config.sampling),
    }


def _requests(problem: Problem, prompt: prompts.TeacherPrompt, samples: int) -> list[Request]:
    messages = prompt.as_messages(problem.question, problem.facts)
    text = prompt.as_text(problem.question, problem.facts)
    return [Request(messages=messages, text=text, stop=prompt.stop, seed=sample) for sample in range(samples)]


def request_hash(request: Request, model: str, config: AnnotateConfig) -> str:
    """Identifies what a reply answers: the same hash means the cached reply can be reused."""
    sampling = config.sampling
    payload = [
        request.messages if config.endpoint == "chat" else request.text,
        list(request.stop),
        model,
        config.endpoint,
        sampling.temperature,
        sampling.top_p,
        sampling.max_tokens,
    ]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _collect_replies(
    out: Path, backend: Backend, config: AnnotateConfig, problems: Sequence[Problem], requests: dict[str, list[Request]]
) -> tuple[dict[tuple[str, int], dict[str, Any]], Tally]:
    """Ask the teacher for every (problem, sample) not yet in the cache file, appending each reply as it
    arrives; return the cached replies of this run's requests by (problem id, sample), and its tally."""
    from tqdm.auto import tqdm

    wanted = {
        (p.id, k): request_hash(requests[p.id][k], backend.model_name, config)
        for p in problems
        for k in range(config.samples)
    }
    tally = Tally()
    path = replies_path(out)
    with JsonlAppender(path, fsync=True) as appender:  # locked before the cache is read: one writer at a time
        cache = _cached_replies(path, wanted)
        pending = [key for key in wanted if key not in cache]
        if cache:
            log.warning("resuming: %d of %d replies already cached in %s", len(cache), len(wanted), path)

        def record(batch: list[tuple[str, int]], outcome: list[Reply] | TeacherError) -> None:
            if isinstance(outcome, TeacherError):
                tally.failures.append(f"{batch[0][0]} sample {batch[0][1]}: {outcome}")
            else:
                for (problem_id, sample), reply in zip(batch, outcome, strict=True):
                    row = {
                        "problem_id": problem_id,
                        "sample": sample,
                        "request_hash": wanted[problem_id, sample],
                        "model": backend.model_name,
                        **dataclasses.asdict(reply),
                    }
                    appender.append(row)  # on disk before it is used
                    cache[problem_id, sample] = row
                    tally.add(reply)
            bar.update(len(batch))
            bar.set_postfix_str(live_counts(tally, config.prices), refresh=False)

        with tqdm(total=len(pending), desc=f"annotating with {backend.model_name}", unit="reply") as bar:
            if isinstance(backend, Streaming):
                _stream_replies(backend, pending, requests, config.sampling, record)
            else:
                _pool_replies(backend, pending, requests, config, record)
    return cache, tally


def _pool_replies(
    backend: Backend,
    pending: list[tuple[str, int]],
    requests: dict[str, list[Request]],
    config: AnnotateConfig,
    record: Callable[[list[tuple[str, int]], list[Reply] | TeacherError], None],
) -> None:
    """Batches of requests, `--concurrency` at a time where the backend may be called from threads."""
    workers = config.concurrency if backend.thread_safe else 1
    batches = [pending[i : i + backend.batch_size] for i in range(0, len(pending), backend.batch_size)]

    def outcome(future: Future) -> list[Reply] | TeacherError:
        try:
            return future.result()
        except TeacherError as e:
            return e

    with ThreadPoolExecutor(max_workers=workers) as pool:
        in_flight: dict[Future, list[tuple[str, int]]] = {}
        queued = collections.deque(batches)
        try:
            while queued or in_flight:
                # Keep only a few batches in flight, so that a 100k-problem run does not queue 100k futures.
                while queued and len(in_flight) < 2 * workers:
                    batch = queued.popleft()
                    future = pool.submit(backend.generate, [requests[p][k] for p, k in batch], config.sampling)
                    in_flight[future] = batch
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    record(in_flight.pop(future), outcome(future))
        except KeyboardInterrupt:
            # Replies already being generated are paid for: wait for them and keep them (a second
            # Ctrl-C stops at once). Nothing new is started.
            log.warning("interrupted: saving the replies in flight; rerun the same command to continue")
            running = [f for f in in_flight if not f.cancel()]
            for future in running:
                wait([future])
                record(in_flight[future], outcome(future))
            raise


def _stream_replies(
    backend: Streaming,
    pending: list[tuple[str, int]],
    requests: dict[str, list[Request]],
    sampling: TeacherSampling,
    record: Callable[[list[tuple[str, int]], list[Reply] | TeacherError], None],
) -> None:
    """A backend that decodes many requests itself (in-process llama.cpp) runs in a worker thread;
    each reply is recorded here as it ends. On Ctrl-C no new request starts, the replies being
    decoded are awaited and kept (a second Ctrl-C stops at once), as with the thread pool."""
    results: queue.Queue = queue.Queue()
    stop = threading.Event()

    def decode() -> None:
        try:
            for index, reply in backend.stream([requests[p][k] for p, k in pending], sampling, stop):
                results.put((index, reply))
        except BaseException as e:  # handed to the main thread, which raises it
            results.put((None, e))
        results.put(None)

    threading.Thread(target=decode, name="teacher", daemon=True).start()

    def drain() -> None:
        while (item := results.get()) is not None:
            index, reply = item
            if index is None:
                raise reply
            record([pending[index]], reply if isinstance(reply, TeacherError) else [reply])

    try:
        drain()
    except KeyboardInterrupt:
        log.warning("interrupted: saving the replies in flight; rerun the same command to continue")
        stop.set()
        drain()
        raise


def _cached_replies(path: Path, wanted: dict[tuple[str, int], str]) -> dict[tuple[str, int], dict[str, Any]]:
    """The cache file's replies to this run's requests, by (problem id, sample)."""
    cache: dict[tuple[str, int], dict[str, Any]] = {}
    for number, row in enumerate(read_jsonl(path) if path.exists() else (), start=1):
        key = (row.get("problem_id"), row.get("sample"))
        if not isinstance(key[0], str) or not isinstance(key[1], int) or not isinstance(row.get("text", ""), str):
            raise RecordError(path, number, "not a reply row (problem_id, sample, text): delete the row", unit="row")
        if wanted.get(key) == row.get("request_hash"):
            cache[key] = row
    return cache


def _judge(row: dict[str, Any], problem: Problem, task: Task, style: str, model: str) -> Chain | str:
    """A teacher reply -> a kept chain, or the reason it is rejected (one of REJECTIONS)."""
    text = row["text"]
    if not text.strip():
        return "empty"
    if row["finish_reason"] == "length":
        return "too long"
    parsed = formats.parse_chain(text.strip().strip("`"))
    # Chat models wrap the pairs in prose ("Sure! Here is ..."); prose lines are not steps.
    steps = tuple(s for s in parsed.steps if s.question) if style == "socratic" else parsed.steps
    if not steps or (style == "socratic" and not all(s.answer.strip() for s in steps)):
        return "unparseable"
    answer = task.extract_answer(parsed.answer_text)
    if answer is None:
        return "no answer"
    if not task.is_correct(answer, problem.answer):
        return "wrong answer"
    meta = {key: row[key] for key in ("sample", "request_hash", "tokens_in", "tokens_out", "seconds")}
    return Chain(
        problem_id=problem.id,
        style=style,
        steps=steps,
        final_answer=answer,
        correct=True,
        source=f"teacher:{model}",
        meta=meta,
    )


def _keep(judged: Judged, keep: str) -> list[Chain]:
    kept = []
    for outcomes in judged.values():
        seen = set()
        for _, chain in outcomes:
            if isinstance(chain, Chain) and chain.steps not in seen:
                seen.add(chain.steps)
                kept.append(chain)
                if keep == "first":
                    break
    return kept
