"""Does a QG student know when a problem is done, given the human history? (issue 19)

    python scripts/qg_end_decisions.py runs/val19/qg-b1 --offset 7173 --limit 300

Teacher-forced, on problems it was not trained on: the human decomposition of each GSM8K problem is
laid out exactly as QG is trained (`formats.segments`), and at the start of every QG line the
student's most likely next token is compared with the truth: the end marker after the last pair,
a subquestion ("Q:") after the others. If QG gets the end right here but not in the loop, what
fails is the loop's own history (QA's solutions, QG's own questions), not what was learnt.
"""

from __future__ import annotations

import argparse

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from socratic import formats
from socratic.tasks import load_task
from socratic.train import tokenize_pieces


def line_starts(mask: list[int]) -> list[int]:
    """Positions where a run of trained tokens (one QG line) begins."""
    return [t for t in range(1, len(mask)) if mask[t] and not mask[t - 1]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("qg", help="QG student folder")
    parser.add_argument("--split", default="train")
    parser.add_argument("--offset", type=int, default=7173)
    parser.add_argument("--limit", type=int, default=300)
    args = parser.parse_args()

    tokenizer = AutoTokenizer.from_pretrained(args.qg)
    model = AutoModelForCausalLM.from_pretrained(args.qg, dtype=torch.float32).eval()
    problems = load_task("gsm8k").load(args.split)[args.offset : args.offset + args.limit]
    end_right = end_seen = early_end = lines = 0
    end_probability = 0.0
    for problem in problems:
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
    print(f"{args.qg}: {len(problems)} problems of gsm8k/{args.split} from {args.offset}")
    print(f"  ends the problem after its last human pair: {end_right} / {end_seen} ({100 * end_right / end_seen:.1f} %)")
    print(f"  mean probability of the end marker there:  {end_probability / end_seen:.3f}")
    print(f"  ends it too early (before the last pair):   {early_end} / {lines} ({100 * early_end / lines:.1f} %)")


if __name__ == "__main__":
    main()
