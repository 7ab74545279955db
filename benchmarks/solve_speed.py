"""Solving speed: `socratic solve`'s engines against a plain batched `transformers.generate`, side by side.

    python benchmarks/solve_speed.py --model runs/gsm8k/smollm2-unified-300 --problems 200

Same student, the same first test problems of --dataset (GSM8K unless told), greedy decoding, up to
256 new tokens, calculator off (it changes the text, so outputs could not be compared), float32, CPU
threads = cores unless --threads.

- plain: what a newcomer writes: problems in dataset order, batches of 32, left padding,
  `model.generate(max_new_tokens=256, do_sample=False)`; a batch runs until every row has written
  end-of-sequence (or 256 tokens).
- hf engine: `socratic.engines.HFEngine`: batches of similar prompt lengths, each row leaves the
  batch and its KV cache once its answer line is complete.
- hf engine in bfloat16 (--bf16): the same with bf16 weights (AMX / AVX512-BF16 CPUs and GPUs
  compute it natively); greedy outputs then differ at near-ties, so the agreement is reported.
- llamacpp engine (--llamacpp): the student exported to a float32 GGUF, decoded by llama.cpp with
  continuous batching (a finished sequence's slot takes the next problem at once) and prompt-lookup
  drafts once few sequences are left (`--lookup N`); timed again without drafts (`lookup=0`).

Outputs are compared after cutting each plain completion where its layout ends (the answer line),
which is all `solve` keeps. Reports problems/s and the ratio to plain.

    python benchmarks/solve_speed.py --iterative runs/it --problems 64

compares the iterative QG <-> QA loop batched over all problems against the same loop run one problem
at a time, both with the engine of --iterative-engine; with --plain-iterative also against the naive
loop a newcomer writes (one problem at a time, `model.generate` for each line, the history tokenised
again at every call); and the batched loop against unified generation (the `hf` engine, and the
llama.cpp engine with --llamacpp) when --model is also given. With `--iterative-engine llamacpp`,
--q8_0 also times the batched loop with q8_0 GGUF weights (a quarter of the bytes to read per call;
outputs then differ at near-ties, so agreement and a rough correct count are reported), and
--ablations times it without keeping each problem's KV cache between calls, with each problem handed
to the other model as its line ends (`continuous=True`) instead of in rounds, and without
prompt-lookup drafts.
"""

import argparse
import json
import time
from pathlib import Path

import torch

from socratic.core.records import Step
from socratic.engines import HFEngine, LlamaCppEngine
from socratic.solving.loops import DecodeOptions, DecodeSettings, solve_iterative
from socratic.tasks import load_task
from socratic.text import formats
from socratic.weights.gguf_io import GGUF_TYPES
from socratic.weights.student_folder import student_gguf


def plain_generate(folder: str, prompts: list[str], batch_size: int, max_new_tokens: int) -> list[str]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    texts = []
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True)
        with torch.inference_mode():
            out = model.generate(
                **batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        texts += tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    return texts


def plain_iterative(folder: Path, questions: list[str], config: DecodeSettings) -> list[str]:
    """The QG <-> QA loop as a newcomer writes it: one problem at a time, `model.generate` for every
    line, the whole history tokenised again at each call, a line ends at its newline."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    models = {}
    for role in ("qg", "qa"):
        tokenizer = AutoTokenizer.from_pretrained(folder / role)
        models[role] = (AutoModelForCausalLM.from_pretrained(folder / role, dtype=torch.float32).eval(), tokenizer)

    def line(role: str, prompt: str) -> str:
        model, tokenizer = models[role]
        batch = tokenizer(prompt, return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(
                **batch,
                max_new_tokens=config.decode.step_tokens,
                do_sample=False,
                stop_strings=formats.LINE_STOP,
                tokenizer=tokenizer,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        return tokenizer.decode(out[0, batch["input_ids"].shape[1] :], skip_special_tokens=True)

    outputs = []
    for question in questions:
        steps: tuple[Step, ...] = ()
        while True:
            subquestion = formats.parse_subquestion(line("qg", formats.qg_prompt(question, steps)))
            if subquestion is None or len(steps) == config.decode.max_steps:
                break
            solution = formats.parse_solution(line("qa", formats.qa_prompt(question, steps, subquestion)))
            steps += (Step(subquestion, solution),)
        outputs.append(formats.pairs_text(steps) + (formats.END_MARKER if subquestion is None else ""))
    return outputs


def cut(text: str) -> str:
    end = formats.completion_end(text, "answer")
    return text[:end] if end is not None else text


def timed(label: str, results: dict, fn, *args):
    started = time.perf_counter()
    value = fn(*args)
    results[label] = round(time.perf_counter() - started, 1)
    print(f"{label}: {results[label]} s", flush=True)
    return value


def one_pass(args, questions, results):
    prompts = [formats.problem_prompt(q) for q in questions]
    plain = timed("plain generate", results, plain_generate, args.model, prompts, 32, args.max_new_tokens)
    engine = HFEngine(args.model, batch_size=args.batch_size, threads=args.threads)
    ours = timed("hf engine", results, engine.complete, prompts, "answer", args.max_new_tokens)
    results["hf same outputs"] = sum(cut(p) == o.text for p, o in zip(plain, ours, strict=True))
    # Completions cut off at the token limit cost plain and ours the same: stopping early cannot help them.
    results["completions at the token limit"] = sum(o.finish == "length" for o in ours)
    results["tokens generated"] = sum(o.tokens for o in ours)
    if args.bf16:
        bf16 = HFEngine(args.model, batch_size=args.batch_size, dtype="bfloat16", threads=args.threads)
        ours = timed("hf engine bf16", results, bf16.complete, prompts, "answer", args.max_new_tokens)
        results["hf engine bf16 same outputs"] = sum(cut(p) == o.text for p, o in zip(plain, ours, strict=True))
    if args.llamacpp:
        for lookup, label in ((args.lookup, "llamacpp engine"), (0, "llamacpp engine, no lookup")):
            if label.endswith("no lookup") and not args.lookup:
                continue
            llama = LlamaCppEngine(
                student_gguf(args.model, args.gguf_type),
                tokenizer=args.model,
                threads=args.threads,
                batch_size=args.llamacpp_batch,
                lookup=lookup,
            )
            theirs = timed(label, results, llama.complete, prompts, "answer", args.max_new_tokens)
            results[f"{label} same outputs"] = sum(cut(p) == o.text for p, o in zip(plain, theirs, strict=True))
            if lookup:
                results["lookup drafts kept / fed"] = f"{llama.drafts_accepted} / {llama.drafts_fed}"


def iterative(args, task, problems, results):
    folder = Path(args.iterative)
    questions = [p.question for p in problems]

    config = DecodeOptions(calculator=False).settings()

    def engines(gguf_type=args.gguf_type, **options):
        if args.iterative_engine == "llamacpp":
            return [
                LlamaCppEngine(
                    student_gguf(folder / role, gguf_type),
                    folder / role,
                    threads=args.threads,
                    batch_size=args.llamacpp_batch,
                    # Room for the longest history, as `socratic solve` gives it (`students.open_engines`).
                    context_per_sequence=768 + 2 * config.decode.max_steps * config.decode.step_tokens,
                    **({"lookup": args.lookup} | options),
                )
                for role in ("qg", "qa")
            ]
        return [HFEngine(folder / role, batch_size=args.batch_size, threads=args.threads) for role in ("qg", "qa")]

    qg, qa = engines()
    batched = timed("iterative batched", results, solve_iterative, qg, qa, questions, config)
    naive = timed(
        "iterative one problem at a time",
        results,
        lambda: [solve_iterative(qg, qa, [q], config)[0] for q in questions],
    )
    results["iterative same outputs"] = same_outputs(batched, naive)
    if args.plain_iterative:
        plain = timed(
            "iterative plain generate, one problem at a time", results, plain_iterative, folder, questions, config
        )
        results["iterative plain same outputs"] = sum(a.output == b for a, b in zip(batched, plain, strict=True))
    if args.iterative_engine == "llamacpp":
        results["iterative lookup drafts kept / fed"] = (
            f"{qg.drafts_accepted + qa.drafts_accepted} / {qg.drafts_fed + qa.drafts_fed}"
        )
    results["iterative batched correct"] = correct(batched, problems, task)
    if args.iterative_engine == "llamacpp" and args.q8_0:
        qg, qa = engines(gguf_type="q8_0")
        again = timed("iterative batched, q8_0 weights", results, solve_iterative, qg, qa, questions, config)
        results["iterative q8_0 same outputs"] = same_outputs(batched, again)
        results["iterative q8_0 correct"] = correct(again, problems, task)
    if args.iterative_engine == "llamacpp" and args.ablations:
        qg, qa = engines(keep_cache=False)
        again = timed("iterative batched, no KV reuse", results, solve_iterative, qg, qa, questions, config)
        results["iterative no-reuse same outputs"] = same_outputs(batched, again)
        # The same engines fed continuously: each problem handed to the other model as its line ends,
        # instead of rounds of all QG lines, then all QA lines.
        qg, qa = engines()
        again = timed(
            "iterative batched, continuous hand-over",
            results,
            lambda: solve_iterative(qg, qa, questions, config, continuous=True),
        )
        results["iterative continuous same outputs"] = same_outputs(batched, again)
        if args.lookup:
            qg, qa = engines(lookup=0)
            again = timed("iterative batched, no lookup", results, solve_iterative, qg, qa, questions, config)
            results["iterative no-lookup same outputs"] = same_outputs(batched, again)


def same_outputs(attempts, others) -> int:
    """How many problems two runs of the iterative loop wrote the same text for."""
    return sum(a.output == b.output for a, b in zip(attempts, others, strict=True))


def correct(attempts, problems, task) -> int:
    """How many attempts' last solutions give the gold answer (calculator off: a rough figure)."""
    return sum(
        bool(task.is_correct(task.extract_answer(a.answer_text), p.answer))
        for a, p in zip(attempts, problems, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a one-pass (unified) student folder")
    parser.add_argument("--iterative", help="a folder with qg/ and qa/ students")
    parser.add_argument("--dataset", default="gsm8k", help="benchmark whose first test problems are solved")
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--iterative-engine", choices=("hf", "llamacpp"), default="hf")
    parser.add_argument("--gguf-type", choices=GGUF_TYPES, default="f32", help="llama.cpp weights")
    parser.add_argument("--bf16", action="store_true", help="also time the hf engine with bfloat16 weights")
    parser.add_argument("--llamacpp", action="store_true", help="also time the llama.cpp engine")
    parser.add_argument(
        "--plain-iterative", action="store_true", help="also time the loop written with plain generate, one at a time"
    )
    parser.add_argument("--llamacpp-batch", type=int, default=64, help="sequences decoded together by llama.cpp")
    parser.add_argument("--lookup", type=int, default=10, help="llama.cpp prompt-lookup drafts per sequence (0: off)")
    parser.add_argument(
        "--q8_0", action="store_true", help="also time the batched iterative loop with q8_0 GGUF weights (llamacpp)"
    )
    parser.add_argument(
        "--ablations",
        action="store_true",
        help="also time the batched iterative loop (llamacpp) without KV reuse, handing problems over "
        "continuously, and without drafts",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    task = load_task(args.dataset)
    problems = task.load("test", limit=args.problems)
    questions = [p.question for p in problems]
    results: dict = {"dataset": args.dataset, "problems": len(questions), "threads": torch.get_num_threads()}
    if args.model:
        one_pass(args, questions, results)
    if args.iterative:
        iterative(args, task, problems, results)
    # name -> (numerator row, denominator row), for every pair that was timed
    one_pass_engines = ("hf engine", "hf engine bf16", "llamacpp engine", "llamacpp engine, no lookup")
    ratios = {f"{label} speed-up": ("plain generate", label) for label in one_pass_engines} | {
        "iterative batched speed-up": ("iterative one problem at a time", "iterative batched"),
        "iterative batched speed-up over plain": (
            "iterative plain generate, one problem at a time",
            "iterative batched",
        ),
        "continuous hand-over speed-up": ("iterative batched", "iterative batched, continuous hand-over"),
        "lookup speed-up (iterative)": ("iterative batched, no lookup", "iterative batched"),
        "KV reuse speed-up": ("iterative batched, no KV reuse", "iterative batched"),
        "q8_0 speed-up (iterative)": ("iterative batched", "iterative batched, q8_0 weights"),
        "iterative q8_0 speed-up over plain": (
            "iterative plain generate, one problem at a time",
            "iterative batched, q8_0 weights",
        ),
        "iterative / unified time": ("iterative batched", "hf engine"),
        "iterative / unified time (llamacpp)": ("iterative batched", "llamacpp engine"),
    }
    for name, (numerator, denominator) in ratios.items():
        if numerator in results and denominator in results:
            results[name] = round(results[numerator] / results[denominator], 2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
