"""Training tokens/s: `socratic train` against a plain `transformers` Trainer, side by side.

    python benchmarks/train_throughput.py --model smollm2-135m --examples 64
    python benchmarks/train_throughput.py --mode qg --examples 32 --skip-bf16-baseline

Same model (full fine-tuning, float32, CPU threads = cores), same examples (the unified-mode text of
the first N GSM8K training problems' human chains, from `formats`), one epoch each, loss on the
completion only in both. The plain Trainer pads each batch of 8 to its longest example (what a
newcomer writes), in float32 and with `bf16=True`; `socratic train` packs examples into rows without
padding, with bf16 off and with its default (bf16 mixed precision where the CPU computes bf16
natively). Tokens/s counts real tokens only (no padding), over the `train()` call (model loading
excluded). Optional: LoRA r=16.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

from socratic.core.jsonl import write_jsonl
from socratic.core.records import Chain
from socratic.tasks import gsm8k
from socratic.text import formats
from socratic.training.config import TrainConfig
from socratic.training.train import run_train
from socratic.weights import models


def plain_trainer(
    folder: Path, examples: list[formats.Example], batch_size: int, tmp: str, bf16: bool = False
) -> tuple[int, float]:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    rows = []
    for e in examples:
        prompt = tokenizer(e.prompt)["input_ids"]
        full = tokenizer(e.prompt + e.completion + tokenizer.eos_token)["input_ids"]
        rows.append(
            {"input_ids": full, "attention_mask": [1] * len(full), "labels": [-100] * len(prompt) + full[len(prompt) :]}
        )
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    args = TrainingArguments(
        output_dir=f"{tmp}/plain",
        per_device_train_batch_size=batch_size,
        num_train_epochs=1,
        learning_rate=5e-5,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        logging_steps=1000,
        bf16=bf16,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=rows, data_collator=DataCollatorForSeq2Seq(tokenizer, padding="longest")
    )
    started = time.perf_counter()
    trainer.train()
    return sum(len(r["input_ids"]) for r in rows), time.perf_counter() - started


def ours(folder: Path, chains: Path, tmp: str, name: str, mode: str = "unified", **overrides) -> tuple[int, float]:
    out = run_train(
        TrainConfig(
            method=mode,
            chains=str(chains),
            model=str(folder),
            out=f"{tmp}/{name}",
            epochs=1,
            save_steps=10_000,
            logging_steps=1000,
            **overrides,
        )
    )
    manifest = json.loads((out / "manifest.json").read_text())
    return manifest["epoch_tokens"], manifest["train_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--lora", action="store_true", help="also measure socratic train with LoRA r=16")
    parser.add_argument(
        "--mode",
        default="unified",
        choices=formats.ROLES,
        help="qg or qa: the plain Trainer gets the per-step examples of formats.examples, socratic train "
        "each chain once (formats.segments); both supervise exactly the same completions",
    )
    parser.add_argument("--skip-bf16-baseline", action="store_true", help="leave out the plain Trainer with bf16")
    args = parser.parse_args()
    folder = models.resolve(args.model)
    problems = gsm8k.load("train")[: args.examples]
    examples = [e for p in problems for e in formats.examples(args.mode, p.question, p.human_steps, p.answer)]
    with tempfile.TemporaryDirectory() as tmp:
        chains = write_jsonl(
            Path(tmp) / "chains.jsonl",
            [Chain(p.id, "socratic", p.human_steps, p.answer, True, "human") for p in problems],
        )
        packed = dict(batch_size=2, max_length=1024)
        packed["mode"] = args.mode
        results = {"plain Trainer, padded batches of 8, fp32": plain_trainer(folder, examples, 8, tmp)}
        if not args.skip_bf16_baseline:
            results["plain Trainer, padded batches of 8, bf16=True"] = plain_trainer(
                folder, examples, 8, tmp, bf16=True
            )
        results["socratic train --no-bf16 (packed, fp32)"] = ours(folder, chains, tmp, "fp32", bf16=False, **packed)
        results["socratic train (packed, bf16 auto)"] = ours(folder, chains, tmp, "auto", **packed)
        if args.lora:
            results["socratic train --lora-r 16 (packed, bf16 auto)"] = ours(
                folder, chains, tmp, "lora", lora_r=16, **packed
            )
    # Both sides supervise the same completions; for qg/qa ours reads far fewer tokens to do so, so
    # the epoch time is the fair comparison there, tokens/s the one for one-pass modes.
    base_rate = base_seconds = None
    for name, (tokens, seconds) in results.items():
        rate = tokens / seconds
        base_rate, base_seconds = base_rate or rate, base_seconds or seconds
        print(
            f"{name:<50} {tokens:>7,} tokens in {seconds:6.1f} s = {rate:6.1f} tokens/s "
            f"({rate / base_rate:.2f}x tokens/s, {base_seconds / seconds:.2f}x epoch time)"
        )


if __name__ == "__main__":
    main()
