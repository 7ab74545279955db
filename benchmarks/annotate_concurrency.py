"""Annotation throughput against a local llama.cpp server: --concurrency 1 vs 8, side by side.

    python benchmarks/annotate_concurrency.py --model qwen2.5-coder-0.5b --problems 16

Both runs annotate the same SVAMP training problems (greedy, one sample each) with the same server,
each into its own empty output folder, one after the other. Prints replies per second and the ratio.
"""

import argparse
import tempfile
import time
from pathlib import Path

from socratic import models
from socratic.tasks.options import DataOptions
from socratic.teacher.annotate import AnnotateConfig, run_annotate
from socratic.teacher.llama_server import LlamaServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b", help="teacher name or .gguf path")
    parser.add_argument("--problems", type=int, default=16)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
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
