"""Predictions of the same problems against the first file's: accuracy, the exact McNemar p, the share of
identical outputs, and the solve's own time (from each file's manifest).

    python scripts/compare_predictions.py runs/x/unified-f32.jsonl runs/x/unified-bf16.jsonl ...

Used to decide whether a faster way of solving (a GGUF weight type, a setting) changes what a student
answers (scripts/gguf_types_validation.sh)."""

import json
import sys
from pathlib import Path

from socratic.scoring.evaluate import mcnemar_exact


def read(path: Path) -> dict[str, dict]:
    rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {row["problem_id"]: row for row in rows}


def seconds(path: Path) -> float | None:
    manifest = path.with_name(path.name.removesuffix(".jsonl") + ".manifest.json")
    return json.loads(manifest.read_text())["solve_seconds"] if manifest.exists() else None


def main(paths: list[Path]) -> None:
    base = read(paths[0])
    print(f"{'predictions':<40} {'accuracy':>9} {'vs first':>24} {'same output':>12} {'seconds':>8}")
    for path in paths:
        rows = read(path)
        if rows.keys() != base.keys():
            sys.exit(f"{path}: not the same problems as {paths[0]}")
        correct = sum(r["correct"] for r in rows.values())
        only_base = sum(base[i]["correct"] and not rows[i]["correct"] for i in base)
        only_this = sum(rows[i]["correct"] and not base[i]["correct"] for i in base)
        same = sum(rows[i]["output"] == base[i]["output"] for i in base)
        versus = f"p = {mcnemar_exact(only_base, only_this):.3g} ({only_base} vs {only_this})"
        took = seconds(path)
        print(
            f"{path.name:<40} {100 * correct / len(rows):>8.1f}% {versus:>24} "
            f"{same:>5}/{len(rows):<6} {took if took is not None else '-':>8}"
        )


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]])
