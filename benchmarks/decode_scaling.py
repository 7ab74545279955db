"""How much one llama.cpp call gains from decoding several sequences at once, on this CPU.

    bash benchmarks/quiet.sh python benchmarks/decode_scaling.py --model qwen2.5-coder-0.5b --threads 2

The ceiling of every batched decoder here (the teacher's `--concurrency`, the students' `--batch-size`,
`socratic serve`): n running sequences each with a ~200-token history (as an annotation reply has),
one new token each per call, the time of a call measured for n = 1, 2, 4, 8, 16. If a call costs
the same for 8 tokens as for 1, weights are read once for all and 8 replies come 8x as fast; where
its time grows with n, the CPU's arithmetic is the limit, and tokens/s stops growing there. The
sizes take turns (1, 2, 4, ..., 1, 2, 4, ...) so a change in load hits them alike; medians of the
rounds. Weights load as the engine loads them (`llama_buffers.model_params`: without llama.cpp's
repacked buffers on CPUs with AMX, which crash there).
"""

import argparse
import statistics
import time

from socratic.llamacpp.batch import LlamaBatch
from socratic.weights import models

HISTORY = 200


def call_seconds(engine: LlamaBatch, n: int, calls: int) -> list[float]:
    """Time `calls` llama.cpp calls of one new token for each of n sequences (histories evaluated first)."""
    for seq in range(n):
        engine.lc.llama_memory_seq_rm(engine.memory, seq, -1, -1)
        engine._decode([(seq, 100 + t % 50, t, t == HISTORY - 1) for t in range(HISTORY)])
    times = []
    for step in range(calls):
        feed = [(seq, 200 + step, HISTORY + step, True) for seq in range(n)]
        start = time.perf_counter()
        engine._decode(feed)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b", help="a catalogue name or a .gguf file")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", default="1,2,4,8,16", help="sequences per call, comma-separated")
    parser.add_argument("--calls", type=int, default=10, help="timed calls per size and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    engine = LlamaBatch(
        models.resolve(args.model, want="gguf"),
        threads=args.threads,
        batch_size=max(sizes),
        context_per_sequence=1024,
        lookup=0,
        flash_attention=False,
        ubatch=512,
    )
    medians: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(args.rounds):
        for n in sizes:
            medians[n].append(statistics.median(call_seconds(engine, n, args.calls)))
    base = statistics.median(medians[sizes[0]]) / sizes[0]
    print(f"{args.model}, {args.threads} threads, median of {args.rounds} rounds x {args.calls} calls")
    print("| sequences | ms per call | tokens/s | vs 1 sequence |")
    print("| ---: | ---: | ---: | ---: |")
    for n in sizes:
        call = statistics.median(medians[n])
        print(f"| {n} | {call * 1000:.1f} | {n / call:.1f} | {base * n / call:.2f}x |")
    engine.close()


if __name__ == "__main__":
    main()
