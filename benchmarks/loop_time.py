"""The iterative loop's time against the unified student's, side by side (issue 19's "loop time").

    python benchmarks/loop_time.py --unified results/cpu-gsm8k-2400/students/unified \
        --iterative results/cpu-gsm8k-2400/students/iterative --problems 128 --repeats 3
    bash benchmarks/quiet.sh python benchmarks/loop_time.py ...     # with the background runs paused

Both students solve the same problems through `socratic solve` itself (`run_solve`, as `socratic run`
solves the test split: the llama.cpp engine, 64 sequences at a time, calculator on, 10 steps at most),
each repeat into fresh predictions files. The order alternates between repeats, so a machine that
grows busier or quieter favours neither. A repeat's time is the whole command: loading the GGUF
weights (exported once, before the first repeat, untimed), the tokenizer and the engines' KV caches,
then decoding. How much of it is loading is measured apart (opening the engines alone) and reported.

Reports, per repeat and as medians: seconds, problems/s and steps per problem of each student, and
iterative / unified time (the median of the per-repeat ratios). `--rule` is the loop's rule for a
repeated subquestion, as chosen on validation (scripts/gsm8k_qg_validation.sh): plain, stop
(--stop-on-repeat) or retry (--retry-repeats 3 --stop-on-repeat).
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from socratic.commands.solve import SolveConfig, run_solve
from socratic.core.config import build
from socratic.core.jsonl import read_jsonl
from socratic.core.records import Prediction
from socratic.solving import students
from socratic.text.methods import get_method

RULES = {"plain": {}, "stop": {"stop_on_repeat": True}, "retry": {"stop_on_repeat": True, "retry_repeats": 3}}


def solve_settings(args, method: str) -> dict:
    pair = {"qg": f"{args.iterative}/qg", "qa": f"{args.iterative}/qa"}
    students = {"model": args.unified} if method == "unified" else pair
    return {
        "method": method,
        **students,
        "dataset": args.dataset,
        "split": args.split,
        "offset": args.offset,
        "limit": args.problems,
        "engine": "llamacpp",
        "batch_size": args.batch_size,
        "threads": args.threads,
        "max_steps": args.max_steps,
        **(RULES[args.rule] if method == "iterative" else {}),
    }


def timed_solve(settings: dict, out: Path) -> dict:
    config = build(SolveConfig, {**settings, "out": str(out)})
    started = time.perf_counter()
    run_solve(config)
    seconds = time.perf_counter() - started
    predictions = list(read_jsonl(out, Prediction))
    return {
        "seconds": round(seconds, 1),
        "problems/s": round(len(predictions) / seconds, 3),
        "steps per problem": round(sum(len(p.steps) for p in predictions) / len(predictions), 2),
        "correct": sum(bool(p.correct) for p in predictions),
    }


def load_seconds(settings: dict) -> float:
    """How long `solve` takes to open its engines (weights, tokenizer, KV caches) before decoding."""
    config = build(SolveConfig, settings)
    started = time.perf_counter()
    engines = students.open_engines(
        get_method(config.method), config.student_folders(), config.runtime, config.decoding
    )
    seconds = time.perf_counter() - started
    del engines
    return round(seconds, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--unified", required=True, help="a unified student folder")
    parser.add_argument("--iterative", required=True, help="a folder with the qg/ and qa/ students")
    parser.add_argument("--dataset", default="gsm8k")
    parser.add_argument("--split", default="test")
    parser.add_argument("--offset", type=int, default=0, help="first problem of the split to solve")
    parser.add_argument("--problems", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64, help="sequences decoded together (as socratic run)")
    parser.add_argument("--max-steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    parser.add_argument("--rule", choices=tuple(RULES), default="plain", help="the loop's rule for a repeat")
    args = parser.parse_args()

    runs = {"unified": solve_settings(args, "unified"), "iterative": solve_settings(args, "iterative")}
    results: dict = {name: [] for name in runs}
    with tempfile.TemporaryDirectory() as scratch:
        for n, settings in enumerate(runs.values()):  # untimed: exports the GGUF weights once, warms the cache
            run_solve(build(SolveConfig, {**settings, "limit": 1, "out": f"{scratch}/warm-{n}.jsonl"}))
        loading = {name: load_seconds(settings) for name, settings in runs.items()}
        for repeat in range(args.repeats):
            order = list(runs) if repeat % 2 == 0 else list(reversed(runs))
            for name in order:
                out = Path(scratch) / f"{repeat}-{name.replace(' ', '_')}.jsonl"
                results[name].append(timed_solve(runs[name], out))
                print(f"repeat {repeat + 1}, {name}: {results[name][-1]}", flush=True)

    summary: dict = {
        "dataset": f"{args.dataset}/{args.split}",
        "problems": args.problems,
        "offset": args.offset,
        "repeats": args.repeats,
        "rule": args.rule,
    }
    for name, timings in results.items():
        summary[name] = {
            "median seconds": statistics.median(t["seconds"] for t in timings),
            "of which opening the engines": loading[name],
            "steps per problem": timings[0]["steps per problem"],
            "correct": timings[0]["correct"],
            "seconds": [t["seconds"] for t in timings],
        }
        if name != "unified":
            ratios = [t["seconds"] / u["seconds"] for t, u in zip(timings, results["unified"], strict=True)]
            summary[name][f"{name} / unified time (median)"] = round(statistics.median(ratios), 2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
