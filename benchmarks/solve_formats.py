"""Solving speed by GGUF weight type and llama.cpp threads, and what each type changes in the outputs.

    python benchmarks/solve_formats.py --model runs/unified --iterative runs/iterative --problems 64

The unified student (one pass) and the iterative pair (the QG <-> QA loop, rounds), calculator on,
greedy, `--batch-size` sequences (64), the unified student's budget `--max-new-tokens`, on the first
`--problems` of GSM8K's `--split` (test; the validation slice is `--split train --offset 7173
--problems 300`), with the llama.cpp engine on each of the student's GGUF exports (`--types`, f32
first) and each `--threads`. Runs alternate (every setting once, then again for `--repeats`) and the
median is reported as problems/s. Then, per type, the share of problems whose greedy output equals
f32's, and accuracy with the exact McNemar p against f32 (`scoring.evaluate.mcnemar_exact`).

`--repack` also runs the unified student on q8_0 with llama.cpp's repacked weight buffers
(`use_extra_bufts`, which `llamacpp.buffers` turns off on CPUs with AMX) in a child process, so a
crash is reported with its signal instead of ending the benchmark.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from socratic.engines import LlamaCppEngine
from socratic.scoring.evaluate import mcnemar_exact
from socratic.solving.loops import DecodeOptions, solve_iterative, solve_one_pass
from socratic.tasks import load_task
from socratic.weights.gguf_io import GGUF_TYPES
from socratic.weights.student_folder import student_gguf


def engine(folder: Path, gguf_type: str, threads: int, batch_size: int) -> LlamaCppEngine:
    return LlamaCppEngine(student_gguf(folder, gguf_type), folder, threads=threads, batch_size=batch_size)


def unified(args, gguf_type: str, threads: int, questions: list[str]):
    student = engine(Path(args.model), gguf_type, threads, args.batch_size)
    started = time.perf_counter()
    attempts = solve_one_pass(student, questions, DecodeOptions(max_new_tokens=args.max_new_tokens).settings())
    return time.perf_counter() - started, attempts


def iterative(args, gguf_type: str, threads: int, questions: list[str]):
    folder = Path(args.iterative)
    qg, qa = (engine(folder / role, gguf_type, threads, args.batch_size) for role in ("qg", "qa"))
    started = time.perf_counter()
    attempts = solve_iterative(qg, qa, questions, DecodeOptions().settings())
    return time.perf_counter() - started, attempts


def repacked_child(args) -> None:
    """In the child: the unified student on q8_0 with repacked buffers; prints seconds and outputs."""
    from socratic.llamacpp import buffers

    buffers.cpu_has_amx = lambda: False  # `model_params` then leaves llama.cpp's extra buffers on
    questions = [p.question for p in problems(args)]
    seconds, attempts = unified(args, "q8_0", args.threads[0], questions)
    print(json.dumps({"seconds": seconds, "outputs": [a.output for a in attempts]}))


def problems(args):
    return load_task(args.dataset).load(args.split)[args.offset : args.offset + args.problems]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a unified student folder")
    parser.add_argument("--iterative", help="a folder with qg/ and qa/ students")
    parser.add_argument("--dataset", default="gsm8k")
    parser.add_argument("--split", default="test")
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=256, help="token budget of the unified student")
    parser.add_argument("--types", nargs="+", default=list(GGUF_TYPES), choices=GGUF_TYPES)
    parser.add_argument("--threads", nargs="+", type=int, default=[2])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--repack", action="store_true", help="also q8_0 with repacked buffers (child process)")
    parser.add_argument("--child-repack", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_repack:
        return repacked_child(args)
    assert args.types[0] == "f32", "f32 comes first: the others are compared with it"
    task = load_task(args.dataset)
    chosen = problems(args)
    questions = [p.question for p in chosen]
    runs = {"unified": unified, "iterative": iterative}
    runs = {name: run for name, run in runs.items() if getattr(args, "model" if name == "unified" else name)}
    seconds: dict[str, list[float]] = {}
    outputs: dict[str, list] = {}
    for _ in range(args.repeats):
        for name, run in runs.items():
            for gguf_type in args.types:
                for threads in args.threads:
                    label = f"{name} {gguf_type} threads={threads}"
                    took, attempts = run(args, gguf_type, threads, questions)
                    seconds.setdefault(label, []).append(round(took, 1))
                    outputs.setdefault(f"{name} {gguf_type}", attempts)
                    print(f"{label}: {took:.1f} s", flush=True)
    results: dict = {"problems": len(questions), "split": args.split, "offset": args.offset}
    for label, times in seconds.items():
        results[label] = {"seconds": times, "problems/s": round(len(questions) / statistics.median(times), 3)}
    for name in runs:
        reference = outputs[f"{name} f32"]
        right = {
            t: [
                task.is_correct(task.extract_answer(a.answer_text), p.answer)
                for a, p in zip(outputs[f"{name} {t}"], chosen, strict=True)
            ]
            for t in args.types
        }
        for gguf_type in args.types[1:]:
            mine = outputs[f"{name} {gguf_type}"]
            only_f32 = sum(a and not b for a, b in zip(right["f32"], right[gguf_type], strict=True))
            only_mine = sum(b and not a for a, b in zip(right["f32"], right[gguf_type], strict=True))
            results[f"{name} {gguf_type} vs f32"] = {
                "same outputs": sum(a.output == b.output for a, b in zip(reference, mine, strict=True)),
                "correct": sum(right[gguf_type]),
                "f32 correct": sum(right["f32"]),
                "McNemar p": round(mcnemar_exact(only_f32, only_mine), 4),
            }
    if args.repack and args.model:
        child = [sys.executable, __file__, "--child-repack", "--model", args.model, "--dataset", args.dataset]
        child += ["--split", args.split, "--offset", str(args.offset), "--problems", str(args.problems)]
        child += ["--batch-size", str(args.batch_size), "--threads", str(args.threads[0])]
        child += ["--max-new-tokens", str(args.max_new_tokens)]
        done = subprocess.run(child, capture_output=True, text=True)
        entry: dict = {"exit status": done.returncode}
        if done.returncode == 0:
            found = json.loads(done.stdout.strip().splitlines()[-1])
            plain = outputs.get("unified q8_0")
            entry["problems/s"] = round(len(questions) / found["seconds"], 3)
            if plain is not None:
                entry["same outputs as q8_0"] = sum(a.output == b for a, b in zip(plain, found["outputs"], strict=True))
        else:
            entry["stderr tail"] = done.stderr[-500:]
        results["unified q8_0 repacked (child)"] = entry
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
