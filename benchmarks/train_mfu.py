"""Training speed against the machine's own limit: `socratic train`'s tokens/s and MFU, the landed
recipe and the new one side by side, with the matmul peak and a plain PyTorch loop measured in the
same run, and a check that the speed did not change what is learnt.

    bash benchmarks/quiet.sh python benchmarks/train_mfu.py                 # everything, ~25 min on 2 cores
    python benchmarks/train_mfu.py --repeats 1 --problems 16 --skip-loss-check   # a quick look
    python benchmarks/train_mfu.py --repeats 2 --recipes landed,new              # without compilation

1. Peak: matrix products in the precision training computes in, 4096^3 and the model's own shapes (rows
   of 1,024 tokens through SmolLM2-135M's projections and its 49k-word output layer), and the other
   precision's for scale; the best of a few, as a peak is.
2. Throughput: `socratic train --method unified` (full fine-tuning, SmolLM2-135M, packed rows of 1,024
   tokens, 4 rows a step: the defaults) for two epochs on the human chains of the first N GSM8K training
   problems: the landed recipe (`--no-packed-attention --no-fused-optimizer --trl-loss
   --gradient-checkpointing --micro-batch 4`: what main did before issue 32), the new defaults with
   activations recomputed (what main did until TRL's default was overridden, 2026-12-05), the new
   defaults with a step's 4 rows in one pass (`--micro-batch 4`, main until 2026-12-07), the new
   defaults (on a CPU one row a pass), and
   `--torch-compile` (every step padded to one shape, so it compiles once), alternating, `--repeats`
   times each; medians. Each is reported over its two epochs and over its second epoch alone (the steady
   state a long run gets, from the seconds stamped in loss.jsonl: past the first steps' warm-up and past
   compilation, as the plain loop beside them leaves out its warm-up step). The plain loop of the issue:
   one 1,024-token row of the same text a step, bf16 autocast (where training uses bf16), AdamW, nothing else.
   Tokens/s counts real tokens (the epoch's packed tokens over the trainer's own train_runtime).
   MFU = model FLOPs / time / the 4096^3 peak of the precision training computes in (bf16 where the CPU
   has AVX512-BF16 or AMX, float32 elsewhere: `socratic train`'s own choice, `native_bf16`; the plain
   loop autocasts to bf16 only where training does, so both compute alike), where model FLOPs = 6 x parameters x
   tokens (every parameter of a tied model is used in one matmul forward) + the attention each
   example needs (6 x layers x width x n(n+1) for an example of n tokens: QK^T and AV, forward and
   backward, causal). The landed recipe's wasted attention across examples is not counted as useful.
3. Loss check: both recipes train 50 steps (1 row of 384 tokens a step, same data and seed, in the
   precision training computes in); the new recipe's per-step losses must stay within --tolerance (relative)
   of the landed one's, and the held-out loss of the two students (completion tokens of the next 32
   problems' chains, float32) must not be worse by more than that tolerance.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from socratic.core.jsonl import write_jsonl
from socratic.core.records import Chain
from socratic.tasks import gsm8k
from socratic.training.config import TrainConfig
from socratic.training.data import load_pieces, tokenize_pieces
from socratic.training.train import run_train
from socratic.training.trainer import native_bf16
from socratic.weights import models

# TRL's SFTConfig turns activation checkpointing on unless told otherwise, and until 2026-12-05 socratic
# did not tell it: every recipe measured before then recomputed each layer's forward pass.
# Until 2026-12-07 a step's 4 rows went through the model in one pass; a CPU now takes them one at a time.
WHOLE_BATCH = {"micro_batch": 4}
LANDED = {
    "packed_attention": False,
    "fused_optimizer": False,
    "trl_loss": True,
    "gradient_checkpointing": True,
    **WHOLE_BATCH,
}
RECOMPUTING = {"gradient_checkpointing": True, **WHOLE_BATCH}
NEW: dict[str, bool] = {}
COMPILED = {"torch_compile": True}
# name, recipe: each trains two epochs of the same rows, so that its second one, past the first step's
# warm-up (and, compiled, past compilation), is timed on its own: its steady state, what a long run gets,
# as the plain loop's time leaves out its warm-up step. The whole run is reported too.
RECIPES = (
    ("landed", LANDED),
    ("recomputing", RECOMPUTING),  # the new defaults as main ran them until 2026-12-05
    ("whole batch", WHOLE_BATCH),  # the new defaults as main ran them until 2026-12-07
    ("new", NEW),
    ("new + compile", COMPILED),
)
EPOCHS = 2
PRECISION = {torch.bfloat16: "bf16", torch.float32: "float32"}  # the names the peaks are printed under


# --- 1. the limit --------------------------------------------------------------------------------------


def matmul_tflops(m: int, k: int, n: int, dtype: torch.dtype, seconds: float = 1.5) -> float:
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    a @ b
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * m * k * n / best / 1e12


def peaks(config, dtype: torch.dtype) -> dict[str, float]:
    """Matmul TFLOP/s in `dtype` (4096^3 and the model's shapes), and the other precision's, for scale."""
    width, ffn, vocab = config.hidden_size, config.intermediate_size, config.vocab_size
    kv = config.num_key_value_heads * (width // config.num_attention_heads)
    shapes = {
        "4096^3": (4096, 4096, 4096),
        f"1024x{width}x{ffn} (MLP up)": (1024, width, ffn),
        f"1024x{ffn}x{width} (MLP down)": (1024, ffn, width),
        f"1024x{width}x{width} (q, o)": (1024, width, width),
        f"1024x{width}x{kv} (k, v)": (1024, width, kv),
        f"1024x{width}x{vocab} (output layer)": (1024, width, vocab),
    }
    found = {f"{PRECISION[dtype]} {name}": matmul_tflops(*shape, dtype) for name, shape in shapes.items()}
    if dtype == torch.bfloat16:
        found["float32 4096^3"] = matmul_tflops(4096, 4096, 4096, torch.float32)  # for scale
    else:  # for scale, smaller: emulated bf16 ran at 0.0009 TFLOP/s on an AVX2 EPYC, 150 s a 4096^3 product
        found["bf16 1024^3"] = matmul_tflops(1024, 1024, 1024, torch.bfloat16, seconds=0.5)
    return found


# --- 2. throughput ---------------------------------------------------------------------------------------


def chains_of(problems, path: Path) -> Path:
    return write_jsonl(path, [Chain(p.id, "socratic", p.human_steps, p.answer, True, "human") for p in problems])


def example_lengths(chains: Path, model: str) -> list[int]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(models.resolve(model))
    pieces, _ = load_pieces(TrainConfig(chains=str(chains), model=model), "unified")
    return [len(tokenize_pieces(tokenizer, p)["input_ids"]) for p in pieces]


def model_flops(config, parameters: int, lengths: list[int]) -> float:
    """Useful training FLOPs of one epoch over examples of these lengths (packed, each its own sequence)."""
    attention = 6 * config.num_hidden_layers * config.hidden_size * sum(n * (n + 1) for n in lengths)
    return 6 * parameters * sum(lengths) + attention


def socratic_train(chains: Path, model: str, out: Path, recipe: dict, **overrides) -> dict:
    run_train(
        TrainConfig(
            method="unified",
            chains=str(chains),
            model=model,
            out=str(out),
            save_steps=100_000,
            logging_steps=1,
            **{"epochs": 1, **recipe, **overrides},
        )
    )
    return json.loads((out / "manifest.json").read_text())


def rates_of(manifest: dict, out: Path, epochs: int) -> tuple[float, float]:
    """Tokens/s of a run: over the whole run (compilation included), and over its epochs after the first,
    from the seconds stamped on each step's loss (the whole run's rate where it has one epoch)."""
    tokens = manifest["epoch_tokens"]
    overall = epochs * tokens / manifest["train_seconds"]
    if epochs == 1:
        return overall, overall
    log = [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]
    per_epoch = len(log) // epochs
    later = log[-1]["seconds"] - log[per_epoch - 1]["seconds"]
    return overall, (epochs - 1) * tokens / later


def plain_loop(model_path: str, chains: Path, steps: int, bf16: bool) -> tuple[int, float]:
    """The issue's plain loop: 1,024-token rows of the chains' text, bf16 autocast (where `socratic train`
    would use it), AdamW, nothing else."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    pieces, _ = load_pieces(TrainConfig(chains=str(chains), model=model_path), "unified")
    stream = [t for p in pieces for t in tokenize_pieces(tokenizer, p)["input_ids"]]
    rows = [torch.tensor([stream[i : i + 1024]]) for i in range(0, len(stream) - 1023, 1024)][: steps + 1]
    model = AutoModelForCausalLM.from_pretrained(model_path, attn_implementation="sdpa")
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def step(ids):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step(rows[0])  # warm-up, as the trainer's first step is inside its time: excluded here, favouring the loop
    started = time.perf_counter()
    for ids in rows[1:]:
        step(ids)
    return 1024 * (len(rows) - 1), time.perf_counter() - started


# --- 3. what is learnt -------------------------------------------------------------------------------------


def held_out_loss(student: Path, chains: Path) -> float:
    """Mean completion-token loss of `student` on `chains` (float32, no packing)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(student)
    model = AutoModelForCausalLM.from_pretrained(student, dtype=torch.float32).eval()
    pieces, _ = load_pieces(TrainConfig(chains=str(chains), model=str(student)), "unified")
    total = count = 0.0
    with torch.no_grad():
        for p in pieces:
            row = tokenize_pieces(tokenizer, p)
            ids = torch.tensor([row["input_ids"]])
            labels = torch.where(torch.tensor([row["completion_mask"]]) == 1, ids, -100)
            trained = int((labels[0, 1:] != -100).sum())
            total += model(input_ids=ids, labels=labels).loss.item() * trained
            count += trained
    return total / count


def loss_check(train_chains: Path, held_out: Path, model: str, tmp: Path, tolerance: float) -> dict:
    losses, held = {}, {}
    for name, recipe in (("landed", LANDED), ("new", NEW)):
        out = tmp / f"losscheck-{name}"
        socratic_train(train_chains, model, out, recipe, max_steps=50, batch_size=1, micro_batch=1, max_length=384)
        losses[name] = [json.loads(line)["loss"] for line in (out / "loss.jsonl").read_text().splitlines()]
        held[name] = held_out_loss(out, held_out)
    worst = max(abs(a - b) / b for a, b in zip(losses["new"], losses["landed"], strict=True))
    return {
        "steps": len(losses["new"]),
        "worst relative step-loss difference": worst,
        "held-out loss landed": held["landed"],
        "held-out loss new": held["new"],
        "holds": worst <= tolerance and held["new"] <= held["landed"] * (1 + tolerance),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--problems", type=int, default=32, help="GSM8K training problems of one epoch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tolerance", type=float, default=0.02, help="relative, for the loss check (bf16)")
    parser.add_argument("--skip-loss-check", action="store_true")
    parser.add_argument(
        "--recipes",
        default=",".join(name for name, _ in RECIPES),
        help="comma-separated, of: " + ", ".join(name for name, _ in RECIPES) + " (landed is always run)",
    )
    args = parser.parse_args()
    # The landed recipe is every ratio's denominator, so it always runs; the rest as asked (on a slow
    # machine, an AVX2 CPU training in float32 say, leaving out compilation halves the hour).
    asked = {"landed", *(name.strip() for name in args.recipes.split(","))}
    unknown = asked - {name for name, _ in RECIPES}
    if unknown:
        parser.error(f"unknown recipe(s): {', '.join(sorted(unknown))}")
    recipes = [(name, recipe) for name, recipe in RECIPES if name in asked]
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.set_num_threads(torch.get_num_threads())
    path = models.resolve(args.model)
    config = AutoConfig.from_pretrained(path)
    parameters = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(path).parameters())
    print(f"machine: {torch.get_num_threads()} threads; torch {torch.__version__}", flush=True)

    # MFU is against the peak of what training computes in: without native bf16 (an AVX2 CPU) socratic
    # trains in float32, and emulated bf16 products are slower than float32 ones, so a bf16 peak would flatter.
    bf16 = native_bf16(gpu=False)
    dtype = torch.bfloat16 if bf16 else torch.float32
    precision = PRECISION[dtype]
    found = peaks(config, dtype)
    for name, tflops in found.items():
        print(f"peak {name:<40} {tflops:6.3f} TFLOP/s", flush=True)
    print(f"training computes in {precision} here (native bf16: {bf16}); MFU is against its peak", flush=True)
    peak = found[f"{precision} 4096^3"]
    best = max(v for k, v in found.items() if k.startswith(precision))

    problems = gsm8k.load("train")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        chains = chains_of(problems[: args.problems], tmp / "chains.jsonl")
        lengths = example_lengths(chains, args.model)
        flops = model_flops(config, parameters, lengths)
        rates: dict[str, list[float]] = {name: [] for name, _ in recipes}
        steady: dict[str, list[float]] = {name: [] for name, _ in recipes}
        peaks_between: list[float] = [peak]
        for repeat in range(args.repeats):
            for name, recipe in recipes:
                out = tmp / f"{name}-{repeat}".replace(" + ", "-")
                manifest = socratic_train(chains, args.model, out, recipe, epochs=EPOCHS)
                overall, later = rates_of(manifest, out, EPOCHS)
                rates[name].append(overall)
                steady[name].append(later)
                print(f"  {name:<14} repeat {repeat + 1}: {overall:6.1f} tokens/s, {later:6.1f} steady", flush=True)
            # The peak again between repeats: on a shared or throttled machine it moves, and MFU is against
            # the median of all of them, measured beside the runs.
            peaks_between.append(matmul_tflops(4096, 4096, 4096, dtype))
        tokens, seconds = plain_loop(path, chains, steps=6, bf16=bf16)
        plain = tokens / seconds
        per_token = flops / sum(lengths)
        peak = statistics.median(peaks_between)
        beside = ", ".join(f"{p:.3f}" for p in peaks_between)
        print(f"\n{precision} 4096^3 peak beside the runs: {beside}; median {peak:.3f}")
        print(f"{sum(lengths):,} tokens an epoch ({len(lengths)} examples), {per_token / 1e9:.3f} GFLOP a token")
        print(f"{'':<64} {'tokens/s':>9} {'MFU':>6} {'MFU vs best shape':>18}")

        def row(label: str, rate: float) -> None:
            mfu = rate * per_token / 1e12
            print(f"{label:<64} {rate:9.1f} {mfu / peak:6.1%} {mfu / best:18.1%}")

        labels = {
            "landed": "landed recipe",
            "recomputing": "new defaults recomputing activations",
            "whole batch": "new defaults, 4 rows a pass",
            "new": "new defaults",
            "new + compile": "--torch-compile",
        }
        for name in rates:
            row(f"socratic train, {labels[name]}, 2 epochs", statistics.median(rates[name]))
            row(f"socratic train, {labels[name]}, 2nd epoch (steady)", statistics.median(steady[name]))
        row(f"plain loop (1,024-token rows, {'autocast' if bf16 else 'float32'}, AdamW)", plain)
        for kind, table in (("2 epochs", rates), ("2nd epochs", steady)):
            landed = statistics.median(table["landed"])
            for name in [name for name in table if name != "landed"]:
                ours = statistics.median(table[name])
                print(f"{kind}: {name} / landed {ours / landed:.2f}x; {name} / plain loop {ours / plain:.2f}x")
        if not args.skip_loss_check:
            check = loss_check(
                chains,
                chains_of(problems[args.problems : args.problems + 32], tmp / "held.jsonl"),
                args.model,
                tmp,
                args.tolerance,
            )
            print("loss check:", json.dumps(check, indent=1))


if __name__ == "__main__":
    main()
