"""Issue 32's GPU path in one run of a few minutes: `socratic train` and `socratic solve --engine hf` on
CUDA, their tokens/s and problems/s, and the matrix-product peak they are measured against.

Run through `benchmarks/gpu_check.sh`, which first installs what the machine lacks from the bundle that
`benchmarks/gpu_bundle.sh` wrote (nothing is downloaded there). On a CPU the same steps run in float32,
as a dry run of the script (`GPU_CHECK_PROBLEMS=8 GPU_CHECK_LAYERS=2 GPU_CHECK_COMPILE=0`).

1. the versions of what runs, the device, and the peak: the best of a few 8192^3 bf16 products on CUDA
   (1024^3 float32 on a CPU);
2. a student of SmolLM2-135M's shape (its config, random weights: no weights travel) trained as
   `socratic train --method unified` does by default on this device (on CUDA: bf16, SDPA, TRL's chunked
   Triton loss), on the human chains of the first N GSM8K training problems, 2 epochs; then the same
   with `--torch-compile`. Tokens/s over each run and over its second epoch; MFU = 6 x parameters x
   tokens/s / the peak (attention left out: a lower bound);
3. `socratic solve --engine hf` with the eager student on the first 64 problems of the validation slice
   (GSM8K training problems from 7,173 on; not the test split), float32 and bf16 weights, problems/s.
   Random weights trained for seconds write up to the token limit, so this measures decoding, not accuracy.

$OUT (or /tmp/gpu-check) gets log.txt and summary.json; the students and predictions go to a temporary
folder, removed at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

# Imported first: socratic turns off transformers' Hub kernels (`core.machine.no_hub_kernels`), which this
# machine could not download and without whose compiled package loading a model fails.
import socratic  # noqa: F401

OUT = Path(os.environ.get("OUT") or "/tmp/gpu-check")
BUNDLE = Path(os.environ.get("GPU_CHECK_BUNDLE", ".device"))
PROBLEMS = int(os.environ.get("GPU_CHECK_PROBLEMS", "512"))  # ~100k tokens an epoch: ~26 steps of 4 rows
LAYERS = os.environ.get("GPU_CHECK_LAYERS")  # unset: SmolLM2-135M's 30
COMPILE = os.environ.get("GPU_CHECK_COMPILE", "1") != "0"
SOLVE_PROBLEMS = int(os.environ.get("GPU_CHECK_SOLVE_PROBLEMS", "64"))
VALIDATION_OFFSET = 7173  # GSM8K's training problems from here on are the held-out validation slice
EPOCHS = 2


def versions() -> dict[str, str]:
    import importlib.metadata as metadata

    found = {"python": sys.version.split()[0]}
    names = ("torch", "transformers", "trl", "accelerate", "peft", "datasets", "huggingface_hub", "tokenizers")
    for name in (*names, "pyarrow", "triton"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "-"
    found["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return found


def peak_tflops(device: str) -> tuple[str, float]:
    """The best of a few large products in the precision training computes in here."""
    n, dtype = (8192, torch.bfloat16) if device == "cuda" else (1024, torch.float32)
    a, b = (torch.randn(n, n, dtype=dtype, device=device) for _ in range(2))
    best = float("inf")
    for _ in range(8):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return f"{str(dtype).removeprefix('torch.')} {n}^3", 2 * n**3 / best / 1e12


def tokenizer_folder() -> Path:
    """SmolLM2's tokenizer and config: from the bundle where it travelled, else the installed model."""
    if (BUNDLE / "tokenizer" / "tokenizer.json").exists():
        return BUNDLE / "tokenizer"
    from socratic.weights import models

    return models.resolve("smollm2-135m")


def random_student(folder: Path) -> tuple[Path, int]:
    """SmolLM2-135M's architecture with random weights (`GPU_CHECK_LAYERS` fewer layers), saved as a base."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source = tokenizer_folder()
    config = AutoConfig.from_pretrained(source)
    if LAYERS:
        config.num_hidden_layers = int(LAYERS)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return folder, sum(p.numel() for p in model.parameters())


def human_chains(path: Path) -> Path:
    from socratic.core.jsonl import write_jsonl
    from socratic.core.records import Chain
    from socratic.tasks import gsm8k

    problems = gsm8k.load("train")[:PROBLEMS]
    return write_jsonl(path, [Chain(p.id, "socratic", p.human_steps, p.answer, True, "human") for p in problems])


def train(base: Path, chains: Path, out: Path, compiled: bool) -> dict:
    from socratic.training.config import TrainConfig
    from socratic.training.train import run_train

    started = time.perf_counter()
    run_train(
        TrainConfig(
            method="unified",
            chains=str(chains),
            model=str(base),
            out=str(out),
            epochs=EPOCHS,
            logging_steps=1,
            save_steps=100_000,
            final_checkpoint=False,
            torch_compile=compiled,
        )
    )
    manifest = json.loads((out / "manifest.json").read_text())
    log = [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]
    tokens = manifest["epoch_tokens"]
    half = len(log) // EPOCHS
    second = log[-1]["seconds"] - log[half - 1]["seconds"] if half else None
    return {
        "steps": manifest["steps"],
        "epoch_tokens": tokens,
        "train_seconds": manifest["train_seconds"],
        "tokens_per_s": EPOCHS * tokens / manifest["train_seconds"],
        "second_epoch_tokens_per_s": tokens / second if second else None,
        "wall_seconds_with_loading": time.perf_counter() - started,
        "first_loss": log[0]["loss"],
        "last_loss": log[-1]["loss"],
    }


def solve(student: Path, dtype: str, out: Path) -> dict:
    command = [
        sys.executable,
        "-m",
        "socratic",
        "solve",
        "--method",
        "unified",
        "--model",
        str(student),
        "--engine",
        "hf",
        "--dtype",
        dtype,
        "--dataset",
        "gsm8k",
        "--split",
        "train",
        "--offset",
        str(VALIDATION_OFFSET),
        "--limit",
        str(SOLVE_PROBLEMS),
        "--out",
        str(out),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    print(done.stdout[-2000:], done.stderr[-2000:], sep="\n", flush=True)
    if done.returncode:
        return {"exit_status": done.returncode}
    outputs = [json.loads(line) for line in out.read_text().splitlines()]
    tokens = sum(p.get("meta", {}).get("tokens", 0) for p in outputs)
    return {
        "problems": len(outputs),
        "written_tokens": tokens,
        "seconds_with_loading": seconds,
        "problems_per_s_with_loading": len(outputs) / seconds,
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    summary: dict = {"versions": versions(), "problems": PROBLEMS}
    print(json.dumps(summary["versions"]), flush=True)
    summary["peak"] = dict(zip(("shape", "tflops"), peak_tflops(device), strict=True))
    print(f"peak {summary['peak']['shape']}: {summary['peak']['tflops']:.1f} TFLOP/s", flush=True)
    # The students and predictions stay outside $OUT: a device call brings back a few small files only.
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        measure(summary, Path(scratch))
    failed = [
        part for part, result in summary.items() if isinstance(result, dict) and {"error", "exit_status"} & set(result)
    ]
    if failed:
        sys.exit(f"failed: {', '.join(failed)} (summary.json and log.txt say how)")


def measure(summary: dict, work: Path) -> None:
    """Train eager and compiled, then solve with the eager student, writing summary.json after each part."""
    base, parameters = random_student(work / "base")
    summary["parameters"] = parameters
    chains = human_chains(work / "chains.jsonl")
    for name, compiled in (("eager", False), ("compiled", True)):
        if compiled and not COMPILE:
            continue
        try:
            result = train(base, chains, work / f"unified-{name}", compiled)
        except Exception as error:  # the check reports what failed and goes on to the solves
            result = {"error": f"{type(error).__name__}: {error}"}
        if "tokens_per_s" in result:
            result["mfu"] = 6 * parameters * result["tokens_per_s"] / (summary["peak"]["tflops"] * 1e12)
        summary[f"train_{name}"] = result
        print(f"train {name}: {json.dumps(result)}", flush=True)
        (OUT / "summary.json").write_text(json.dumps(summary, indent=2))
    for dtype in ("float32", "bfloat16"):
        result = solve(work / "unified-eager", dtype, work / f"predictions-{dtype}.jsonl")
        summary[f"solve_{dtype}"] = result
        print(f"solve hf {dtype}: {json.dumps(result)}", flush=True)
        (OUT / "summary.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
