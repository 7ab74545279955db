"""Annotation throughput: the in-process llama.cpp teacher at --concurrency 1 vs 8, side by side.

    python benchmarks/annotate_concurrency.py --model qwen2.5-coder-0.5b --problems 32 --repeats 2
    python benchmarks/annotate_concurrency.py --model qwen2.5-coder-0.5b --problems 8 --samples 4 --sequential
    python benchmarks/annotate_concurrency.py --server --problems 16      # llama.cpp's HTTP server instead

Every run annotates the same SVAMP training problems (greedy for one sample, temperature 0.7 for
several) with `run_annotate`, each into its own empty output folder; the teacher is loaded once per
setting before the clock starts. The settings take turns (c1, c8, c1, c8, ...) so that a change in
the machine's load hits them alike; the table gives the median of the repeats. Besides replies per
second it counts the prompt tokens llama.cpp evaluated per reply (the shared few-shot prefix and
the samples' shared prompt are evaluated once).

`--sequential` adds the teacher as it was before it batched (issue 20): one llama-cpp-python
`Llama`, `create_chat_completion` one request after another. That `Llama` already continues from
the previous prompt's cells where the next prompt starts the same (its own prefix match), so its
count is what it really evaluated, not the whole prompts.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

from socratic.core.jsonl import read_jsonl
from socratic.tasks.options import DataOptions
from socratic.teacher import annotate
from socratic.teacher.annotate import AnnotateConfig, run_annotate
from socratic.testing.sequential_llama import SequentialLlama
from socratic.weights import models


def prompt_tokens_evaluated(backend) -> int:
    engine = getattr(backend, "engine", None)
    return engine.prompt_tokens_evaluated if engine is not None else backend.prompt_tokens_evaluated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b", help="teacher name or .gguf path")
    parser.add_argument("--problems", type=int, default=32)
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sequential", action="store_true", help="also the teacher before issue 20")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    parser.add_argument("--server", action="store_true", help="llama.cpp's HTTP server instead (openai:)")
    args = parser.parse_args()
    if args.server:
        return serve(args)
    from socratic.teacher.llamacpp import LlamaCppBackend

    gguf = models.resolve(args.model, want="gguf")
    settings = {
        f"c{c}": (lambda c=c: LlamaCppBackend(str(gguf), concurrency=c, n_threads=args.threads))
        for c in args.concurrency
    }
    if args.sequential:
        settings["sequential"] = lambda: SequentialLlama(gguf, args.threads)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in settings}
    texts: dict[str, dict] = {}  # setting -> the reply texts of its first run, by (problem, sample)
    replies = args.problems * args.samples
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name, load in settings.items():
                backend = load()
                config = AnnotateConfig(
                    data=DataOptions(dataset="svamp", split="train", limit=args.problems),
                    teacher=f"llamacpp:{gguf}",
                    samples=args.samples,
                    max_tokens=args.max_tokens,
                    out=f"{tmp}/{name}-{repeat}/chains.jsonl",
                )
                with mock.patch.object(annotate, "load_backend", lambda *a, backend=backend, **k: backend):
                    started = time.perf_counter()
                    run_annotate(config)
                    seconds = time.perf_counter() - started
                per_reply = prompt_tokens_evaluated(backend) / replies
                rows = read_jsonl(annotate.replies_path(Path(config.out)))
                texts.setdefault(name, {(row["problem_id"], row["sample"]): row["text"] for row in rows})
                results[name].append((replies / seconds, per_reply))
                print(
                    f"{name} repeat {repeat}: {replies} replies in {seconds:.1f} s, {per_reply:.0f} prompt tokens/reply"
                )
                del backend
    first = f"c{args.concurrency[0]}"
    rate = {name: statistics.median(r for r, _ in rows) for name, rows in results.items()}
    tokens = {name: statistics.median(t for _, t in rows) for name, rows in results.items()}
    print(
        f"\n{args.model}, {args.problems} problems x {args.samples} samples, max {args.max_tokens} tokens, "
        f"median of {args.repeats}"
    )
    print(
        "| setting | replies/s | vs "
        + first
        + " | prompt tokens evaluated per reply | replies identical to "
        + first
        + " |"
    )
    print("| --- | --- | --- | --- | --- |")
    for name in settings:
        same = sum(texts[name][key] == text for key, text in texts[first].items())
        print(
            f"| {name} | {rate[name]:.3f} | {rate[name] / rate[first]:.2f}x | {tokens[name]:.1f} "
            f"| {same} / {len(texts[first])} |"
        )


def serve(args) -> None:
    """The original benchmark: one llama.cpp server, the HTTP teacher at each concurrency."""
    from socratic.testing.llama_server import LlamaServer

    with (
        tempfile.TemporaryDirectory() as tmp,
        LlamaServer(models.resolve(args.model, want="gguf"), Path(tmp) / "server.log", n_ctx=4096) as url,
    ):
        rates = {}
        for concurrency in args.concurrency:
            config = AnnotateConfig(
                data=DataOptions(dataset="svamp", split="train", limit=args.problems),
                teacher=f"openai:{url}",
                concurrency=concurrency,
                out=f"{tmp}/c{concurrency}/chains.jsonl",
            )
            started = time.perf_counter()
            run_annotate(config)
            seconds = time.perf_counter() - started
            rates[concurrency] = args.problems / seconds
            print(f"concurrency {concurrency}: {args.problems} replies in {seconds:.1f} s = {rates[concurrency]:.2f}/s")
        first, *rest = args.concurrency
        for concurrency in rest:
            print(f"ratio concurrency {concurrency} / {first}: {rates[concurrency] / rates[first]:.2f}x")


if __name__ == "__main__":
    main()
