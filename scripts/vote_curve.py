"""Self-consistency's accuracy and cost for every k up to the k that was sampled (issue 33).

    python scripts/vote_curve.py runs/val33/predictions.sc-t0.7.jsonl [more.jsonl ...]

A predictions file of `socratic solve --samples K` (for the pair, with `--qg-temperature T`) keeps, per
problem, the answer of each of its K attempts in order (`meta.answers`) and the tokens each generated
(`meta.attempt_tokens`). The first k attempts are k samples drawn as a run with `--samples k` draws
them (not the very same ones: each is seeded by its place in the run), and they are voted on by
solve's own rule (`solving.predictions.majority`: the most frequent answer, a tie to the earliest
among the tied), so one run at K gives the whole curve k = 1..K: accuracy with its Wilson 95 %
interval, and the mean tokens a problem cost (every attempt's lines, QG's and QA's).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from socratic.core.jsonl import read_jsonl
from socratic.core.records import Prediction
from socratic.scoring.evaluate import wilson_interval
from socratic.solving.predictions import majority
from socratic.tasks import load_task


def curve(predictions: list[Prediction], dataset: str) -> list[tuple[int, int, float]]:
    """(k, problems solved, mean tokens a problem) for k = 1 .. the fewest attempts any problem has."""
    task = load_task(dataset)
    sampled = min(len(p.meta["answers"]) for p in predictions)
    rows = []
    for k in range(1, sampled + 1):
        solved = sum(bool(task.is_correct(majority(p.meta["answers"][:k]), p.meta["gold"])) for p in predictions)
        tokens = sum(sum(p.meta["attempt_tokens"][:k]) for p in predictions) / len(predictions)
        rows.append((k, solved, tokens))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("predictions", nargs="+", type=Path, help="predictions files of solve --samples K (K > 1)")
    parser.add_argument("--dataset", default="gsm8k", help="the benchmark the problems are from (its answer rule)")
    args = parser.parse_args()
    print("| predictions | k | accuracy | 95% CI | tokens a problem |")
    print("|---|---|---|---|---|")
    for path in args.predictions:
        predictions = list(read_jsonl(path, Prediction))
        if not predictions or any("attempt_tokens" not in p.meta for p in predictions):
            raise SystemExit(f"{path}: not a run of solve --samples K > 1 (no meta.answers / meta.attempt_tokens)")
        for k, solved, tokens in curve(predictions, args.dataset):
            low, high = wilson_interval(solved, len(predictions))
            share = 100 * solved / len(predictions)
            print(f"| {path.name} | {k} | {share:.1f} % | {100 * low:.1f}–{100 * high:.1f} | {tokens:,.0f} |")


if __name__ == "__main__":
    main()
