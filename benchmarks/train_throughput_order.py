"""Run 3 of the training-throughput comparison: `socratic train` (default) first, then the plain
Trainer with bf16=True, then `socratic train` again, in one process, to see order and noise effects.

    python benchmarks/train_throughput_order.py
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, "benchmarks")
import train_throughput as b

from socratic.core.jsonl import write_jsonl
from socratic.core.records import Chain
from socratic.tasks import gsm8k
from socratic.text import formats
from socratic.weights import models

folder = models.resolve("smollm2-135m")
problems = gsm8k.load("train")[:64]
examples = [formats.examples("unified", p.question, p.human_steps, p.answer)[0] for p in problems]
with tempfile.TemporaryDirectory() as tmp:
    chains = write_jsonl(
        Path(tmp) / "c.jsonl", [Chain(p.id, "socratic", p.human_steps, p.answer, True, "human") for p in problems]
    )
    for name, fn in [
        ("ours auto (first)", lambda: b.ours(folder, chains, tmp, "a1", batch_size=2, max_length=1024)),
        ("plain bf16", lambda: b.plain_trainer(folder, examples, 8, tmp, bf16=True)),
        ("ours auto (again)", lambda: b.ours(folder, chains, tmp, "a2", batch_size=2, max_length=1024)),
    ]:
        tokens, seconds = fn()
        print(f"{name}: {tokens} tokens in {seconds:.1f} s = {tokens / seconds:.1f} tokens/s", flush=True)
