"""What `--repeat-unlikelihood` costs a QG training: how many tokens it touches, and the time of a step
with and without it (issue 33).

    bash benchmarks/quiet.sh python benchmarks/repeat_unlikelihood_cost.py --problems 7173 --repeats 3

Counts, over the QG training text of GSM8K's first `--problems` training problems (human chains, as
`socratic train --method qg` lays them out), the QG lines, their trained tokens and the copy targets
(`trainer.copy_targets`: one token a line and earlier line of its chain). Then times one training step
of SmolLM2-135M (bf16 autocast, per-example attention, as `socratic train` on a CPU) on a packed row
of 1,024 tokens of those examples: forward, the completion loss with U = 0 and U = 1, backward;
alternating, medians; and the penalty's own time (`copy_penalty`: reading the labels, one logsumexp per
copy target).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from socratic.tasks import gsm8k
from socratic.text import formats
from socratic.training.data import tokenize_pieces
from socratic.training.packed_attention import training_attention
from socratic.training.trainer import completion_loss, copy_penalty, copy_targets, trained_positions
from socratic.weights import models


def qg_rows(tokenizer, problems) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) of each problem's QG training text; labels -100 where not trained."""
    rows = []
    for problem in problems:
        pieces = formats.segments("qg", problem.question, problem.human_steps, problem.answer)
        row = tokenize_pieces(tokenizer, pieces)
        ids = row["input_ids"]
        rows.append((ids, [t if m else -100 for t, m in zip(ids, row["completion_mask"], strict=True)]))
    return rows


def packed(rows, length: int):
    """The first examples that fit one row of `length` tokens, as the trainer feeds a packed row."""
    ids, labels, positions = [], [], []
    for example_ids, example_labels in rows:
        if len(ids) + len(example_ids) > length:
            break
        ids += example_ids
        labels += example_labels
        positions += list(range(len(example_ids)))
    return (torch.tensor([ids]), torch.tensor([labels]), torch.tensor([positions]))


def step_seconds(model, batch, weight: float) -> tuple[float, float]:
    ids, labels, positions = batch
    keep = trained_positions(labels)
    started = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(input_ids=ids, position_ids=positions, use_cache=False, logits_to_keep=keep).logits
    loss = completion_loss(1.0, weight)(logits, labels, keep, None, positions)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - started, float(loss.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=7173, help="GSM8K training problems counted")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per setting")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = models.resolve("smollm2-135m")
    tokenizer = AutoTokenizer.from_pretrained(base)
    rows = qg_rows(tokenizer, gsm8k.load("train")[: args.problems])
    trained = sum(sum(label != -100 for label in labels) for _, labels in rows)
    lines = sum(
        sum(1 for a, b in zip([-100, *labels], labels, strict=False) if a == -100 and b != -100) for _, labels in rows
    )
    targets = sum(len(copy_targets(labels)) for _, labels in rows)
    print(
        f"{len(rows):,} QG examples: {lines:,} lines, {trained:,} trained tokens, {targets:,} copy targets "
        f"({100 * targets / trained:.2f} % of the trained tokens)"
    )

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, attn_implementation="sdpa").train()
    batch = packed(rows, 1024)
    ids, labels, positions = batch
    keep = trained_positions(labels)
    starts = (positions[0] == 0).nonzero().flatten().tolist()
    in_row = len(copy_targets(labels[0].tolist(), starts))
    print(f"row: {ids.shape[1]} tokens, {len(starts)} examples, {in_row} copy targets")
    times: dict[float, list[float]] = {0.0: [], 1.0: []}
    with training_attention(model, True):
        step_seconds(model, batch, 0.0)  # warm-up
        for _ in range(args.repeats):
            for weight in times:
                seconds, loss = step_seconds(model, batch, weight)
                times[weight].append(seconds)
                print(f"  U = {weight}: {seconds:.2f} s, loss {loss:.4f}")
        logits = torch.randn(1, len(keep), model.config.vocab_size)
    penalty = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        copy_penalty(logits, labels, keep, positions)
        penalty.append(time.perf_counter() - started)
    plain, with_term = statistics.median(times[0.0]), statistics.median(times[1.0])
    print(
        f"step, median of {args.repeats}: U = 0 {plain:.2f} s, U = 1 {with_term:.2f} s "
        f"({100 * (with_term / plain - 1):+.1f} %); copy_penalty alone {1000 * statistics.median(penalty):.1f} ms"
    )


if __name__ == "__main__":
    main()
