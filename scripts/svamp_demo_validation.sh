#!/usr/bin/env bash
# The default demo's training budget, chosen on validation (issue 34): SVAMP training problems
# 300-599 (no shipped chain covers them: the teacher was asked problems 0-299), CoT against unified.
#   A: the demo's recipe (rows of 256 tokens, 4 a step: 18-22 optimizer steps), students of a finished
#      `socratic run` (the run folder, $1);
#   B: cpu-svamp's recipe (rows of 1,024 tokens, 4 a step: 5-6 optimizer steps), trained here.
# Both train on the run's 231 chains (its chains.jsonl: the shipped ones). Usage:
#   bash scripts/svamp_demo_validation.sh runs/default-YYYYMMDD-HHMMSS OUT_FOLDER
set -euo pipefail
run=$1 out=$2
chains=$run/chains.jsonl
validate() {  # student folder, method, predictions file
    socratic solve --config default --model "$1" --method "$2" --split train --offset 300 --limit 300 --out "$3"
}
mkdir -p "$out"
for method in cot unified; do
    validate "$run/students/$method" "$method" "$out/A-$method.jsonl"
done
for method in cot unified; do
    socratic train --config cpu-svamp --method "$method" --chains "$chains" --out "$out/B-$method"
    validate "$out/B-$method" "$method" "$out/B-$method.jsonl"
done
