"""`socratic train --torch-compile` against the same run without, compilation included: a 4-epoch run of the
unified chains of GSM8K's first 32 training problems (12 steps of 4 packed 1,024-token rows).

    bash benchmarks/quiet.sh python benchmarks/train_compile.py 1,0      # 1 = compiled, 0 = not; in this order
"""

import json
import sys
import tempfile
from pathlib import Path

from socratic.core.jsonl import write_jsonl
from socratic.core.records import Chain
from socratic.tasks import gsm8k
from socratic.training.config import TrainConfig
from socratic.training.train import run_train

problems = gsm8k.load("train")[:32]
tmp = Path(tempfile.mkdtemp())
chains = write_jsonl(
    tmp / "c.jsonl", [Chain(p.id, "socratic", p.human_steps, p.answer, True, "human") for p in problems]
)
for compile_ in [x == "1" for x in sys.argv[1].split(",")]:
    out = tmp / f"c{compile_}"
    run_train(
        TrainConfig(
            method="unified",
            chains=str(chains),
            out=str(out),
            epochs=4,
            torch_compile=compile_,
            save_steps=10000,
            logging_steps=1,
        )
    )
    m = json.loads((out / "manifest.json").read_text())
    print(
        "compile",
        compile_,
        "steps",
        m["steps"],
        "seconds",
        m["train_seconds"],
        "tokens/s",
        4 * m["epoch_tokens"] / m["train_seconds"],
        flush=True,
    )
