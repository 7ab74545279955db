"""A student's loss on the human chains of problems it was not trained on (issue 33's recipe decisions).

    python scripts/validation_loss.py runs/val33/recipe/e1-lr1e-4-linear/unified --offset 7173 --limit 300

Teacher-forced, as the student was trained: each GSM8K problem's human chain laid out in the
student's role (`formats.segments`, the role read from its socratic.json), the mean cross-entropy of
the trained tokens (per token, over all problems). Accuracy on 300 problems moves in steps of 0.33
points with a 95 % interval of about +-3; this loss tells apart recipes (epochs, learning rates,
schedules) whose accuracies do not, and shows when more epochs start to overfit (it rises).
"""

from __future__ import annotations

import argparse
import math

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from socratic.tasks import load_task
from socratic.text import formats
from socratic.training.data import tokenize_pieces
from socratic.weights import student_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("student", help="student folder (socratic train's --out, or a pair's qg / qa)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--offset", type=int, default=7173)
    parser.add_argument("--limit", type=int, default=300)
    args = parser.parse_args()

    role = student_folder.read_info(args.student).role
    tokenizer = AutoTokenizer.from_pretrained(args.student)
    model = AutoModelForCausalLM.from_pretrained(args.student, dtype=torch.float32).eval()
    problems = load_task("gsm8k").load(args.split)[args.offset : args.offset + args.limit]
    total, tokens = 0.0, 0
    for problem in problems:
        pieces = formats.segments(role, problem.question, problem.human_steps, problem.answer)
        row = tokenize_pieces(tokenizer, pieces)
        ids = torch.tensor([row["input_ids"]])
        trained = torch.tensor(row["completion_mask"][1:]).bool()  # the tokens predicted and trained
        with torch.no_grad():
            logits = model(ids).logits[0, :-1].float()
        losses = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none")
        total += float(losses[trained].sum())
        tokens += int(trained.sum())
    mean = total / tokens
    print(
        f"{args.student}: {role} loss on the human chains of {len(problems)} problems of gsm8k/{args.split} from "
        f"{args.offset}: {mean:.4f} per trained token ({tokens:,} tokens; perplexity {math.exp(mean):.3f})"
    )


if __name__ == "__main__":
    main()
