"""`socratic serve` under load: N chat requests one at a time vs all N at once, side by side.

    python benchmarks/serve_load.py --model runs/gsm8k/unified --requests 32 --repeats 3
    bash benchmarks/quiet.sh python benchmarks/serve_load.py --model runs/gsm8k/unified   # on a shared machine

The student is served in this process (the server `socratic serve` runs) on a loopback port and
spoken to with the `openai` client: first every request alone, one after the other, then all of
them from N client threads at once; each concurrent reply is checked against its one-at-a-time
reply. Repeated, alternating; prints requests/s per run, the medians and their ratio.
"""

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import openai

from socratic.commands.serve import ServerThread, make_app
from socratic.solving.dialogue import Dialogues
from socratic.solving.loops import DecodeOptions
from socratic.solving.students import EngineOptions, StudentOptions
from socratic.tasks import load_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="student folder (or the folder holding qg/ and qa/)")
    parser.add_argument("--engine", default="llamacpp", choices=("hf", "llamacpp"))
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    options = StudentOptions(model=args.model)
    runtime = EngineOptions(engine=args.engine, batch_size=args.requests, threads=args.threads)
    dialogues = Dialogues(options.student(), runtime, DecodeOptions(max_new_tokens=args.max_new_tokens).settings())
    questions = [p.question for p in load_task("gsm8k").load("test", limit=args.requests)]
    rates: dict[str, list[float]] = {"one at a time": [], "all at once": []}
    with ServerThread(make_app(dialogues, "student")) as server:
        client = openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=3600)

        def ask(question: str) -> str:
            messages = [{"role": "user", "content": question}]
            return client.chat.completions.create(model="student", messages=messages).choices[0].message.content

        for repeat in range(args.repeats):
            started = time.perf_counter()
            alone = [ask(q) for q in questions]
            rates["one at a time"].append(len(questions) / (time.perf_counter() - started))
            started = time.perf_counter()
            with ThreadPoolExecutor(len(questions)) as pool:
                together = list(pool.map(ask, questions))
            rates["all at once"].append(len(questions) / (time.perf_counter() - started))
            same = sum(a == b for a, b in zip(alone, together, strict=True))
            print(
                f"run {repeat + 1}: one at a time {rates['one at a time'][-1]:.2f} req/s, "
                f"all at once {rates['all at once'][-1]:.2f} req/s, replies identical {same}/{len(questions)}",
                flush=True,
            )
            for n, (a, b) in enumerate(zip(alone, together, strict=True)):
                if (
                    a != b
                ):  # where they part: late (a near-tie in the arithmetic of a bigger batch) or at once (a mix-up)
                    shared = next(
                        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
                    )
                    print(f"  request {n}: replies share their first {shared} of {len(a)} / {len(b)} characters")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(
        f"medians over {args.repeats} runs ({args.requests} requests, {args.engine}): "
        + ", ".join(f"{name} {rate:.2f} req/s" for name, rate in medians.items())
        + f"; all at once / one at a time = {medians['all at once'] / medians['one at a time']:.1f}x"
    )


if __name__ == "__main__":
    main()
