"""Predictions of the same problems against the first file's: accuracy, the exact McNemar p, the share of
identical outputs, and the solve's own time (from each file's manifest).

    python scripts/compare_predictions.py runs/x/unified-f32.jsonl runs/x/unified-bf16.jsonl ...

Used to decide whether a faster way of solving (a GGUF weight type, a setting) changes what a student
answers (scripts/gguf_types_validation.sh)."""

import json
import sys
from pathlib import Path

from socratic.core.jsonl import read_jsonl
from socratic.core.manifest import manifest_path
from socratic.core.records import Prediction
from socratic.scoring.evaluate import paired_comparisons


def seconds(path: Path) -> float | None:
    manifest = manifest_path(path)
    return json.loads(manifest.read_text())["solve_seconds"] if manifest.exists() else None


def main(paths: list[Path]) -> None:
    base = list(read_jsonl(paths[0], Prediction))
    outputs = {p.problem_id: p.output for p in base}
    print(f"{'predictions':<40} {'accuracy':>9} {'vs first':>24} {'same output':>12} {'seconds':>8}")
    for path in paths:
        run = list(read_jsonl(path, Prediction))
        pairs = paired_comparisons([paths[0].name, path.name], [base, run])
        if not pairs:
            sys.exit(f"{path}: not the same problems as {paths[0]}")
        pair = pairs[0]  # first: this file, second: the first file
        versus = f"p = {pair.p_value:.3g} ({pair.only_second} vs {pair.only_first})"
        correct = sum(bool(p.correct) for p in run)
        same = sum(p.output == outputs[p.problem_id] for p in run)
        took = seconds(path)
        print(
            f"{path.name:<40} {100 * correct / len(run):>8.1f}% {versus:>24} "
            f"{same:>5}/{len(run):<6} {took if took is not None else '-':>8}"
        )


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]])
