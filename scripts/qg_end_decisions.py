"""Does a QG student know when a problem is done, given the human history? (issue 19)

    python scripts/qg_end_decisions.py runs/val19/qg-b1 --offset 7173 --limit 300

Teacher-forced, on problems it was not trained on: the human decomposition of each GSM8K problem is
laid out exactly as QG is trained (`formats.segments`), and at the start of every QG line the
student's most likely next token is compared with the truth: the end marker after the last pair,
a subquestion ("Q:") after the others. If QG gets the end right here but not in the loop, what
fails is the loop's own history (QA's solutions, QG's own questions), not what was learnt.

It also asks whether QG would rather repeat itself (the loop's commonest failure: 558 of 1,319 test
problems of results/cpu-gsm8k asked their first subquestion again at step 2): on the first
`--repeat-limit` problems, at every subquestion after the first, is the previous subquestion more
likely (total log-probability) than the true next one?
"""

from __future__ import annotations

import argparse

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from socratic.tasks import load_task
from socratic.text import formats
from socratic.training.data import tokenize_pieces


def line_starts(mask: list[int]) -> list[int]:
    """Positions where a run of trained tokens (one QG line) begins."""
    return [t for t in range(1, len(mask)) if mask[t] and not mask[t - 1]]


def line_logprob(model, ids: list[int], start: int, end: int) -> float:
    """Total log-probability of ids[start:end] given everything before it."""
    with torch.no_grad():
        logits = model(torch.tensor([ids[:end]])).logits[0]
    logprobs = torch.log_softmax(logits[start - 1 : end - 1].float(), -1)
    return float(logprobs.gather(1, torch.tensor(ids[start:end]).unsqueeze(1)).sum())


def prefers_repeat(model, tokenizer, pieces, k: int) -> bool:
    """At QG line k (k >= 1, not the end marker), is repeating line k-1 likelier than the truth?"""
    qg_lines = [n for n, (_, trained) in enumerate(pieces) if trained]
    at, previous = qg_lines[k], pieces[qg_lines[k - 1]][0]
    scores = []
    for line in (pieces[at][0], previous):
        head = "".join(text for text, _ in pieces[:at])
        ids = tokenizer(head + line)["input_ids"]
        start = len(tokenizer(head)["input_ids"])
        scores.append(line_logprob(model, ids, start, len(ids)))
    return scores[1] > scores[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("qg", help="QG student folder")
    parser.add_argument("--split", default="train")
    parser.add_argument("--offset", type=int, default=7173)
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--repeat-limit", type=int, default=100, help="problems checked for repeat preference")
    args = parser.parse_args()

    tokenizer = AutoTokenizer.from_pretrained(args.qg)
    model = AutoModelForCausalLM.from_pretrained(args.qg, dtype=torch.float32).eval()
    problems = load_task("gsm8k").load(args.split)[args.offset : args.offset + args.limit]
    end_right = end_seen = early_end = lines = 0
    end_probability = 0.0
    repeat_preferred = repeat_checked = 0
    for number, problem in enumerate(problems):
        pieces = formats.segments("qg", problem.question, problem.human_steps, problem.answer)
        row = tokenize_pieces(tokenizer, pieces)
        ids, starts = row["input_ids"], line_starts(row["completion_mask"])
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        end_token = ids[starts[-1]]  # the first token of the last QG line, the end marker
        for n, t in enumerate(starts):
            predicted = logits[t - 1]
            guess = int(predicted.argmax())
            if n == len(starts) - 1:
                end_seen += 1
                end_right += guess == end_token
                end_probability += float(torch.softmax(predicted, -1)[end_token])
            else:
                lines += 1
                early_end += guess == end_token
        if number < args.repeat_limit:
            for k in range(1, len(starts) - 1):  # every subquestion but the first; not the end marker
                repeat_checked += 1
                repeat_preferred += prefers_repeat(model, tokenizer, pieces, k)
    print(f"{args.qg}: {len(problems)} problems of gsm8k/{args.split} from {args.offset}")
    print(
        f"  ends the problem after its last human pair: {end_right} / {end_seen} ({100 * end_right / end_seen:.1f} %)"
    )
    print(f"  mean probability of the end marker there:  {end_probability / end_seen:.3f}")
    print(f"  ends it too early (before the last pair):   {early_end} / {lines} ({100 * early_end / lines:.1f} %)")
    if repeat_checked:
        share = 100 * repeat_preferred / repeat_checked
        print(
            f"  would rather repeat the previous subquestion than ask the next one: {repeat_preferred} / "
            f"{repeat_checked} ({share:.1f} %, first {min(args.repeat_limit, len(problems))} problems)"
        )


if __name__ == "__main__":
    main()
