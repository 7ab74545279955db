#!/usr/bin/env bash
# Issue 19: does a QG stop on GSM8K? Decided on a validation slice carved from the training split
# (problems 7,173-7,472, the last 300, never trained on); the test split is not read.
#
#   bash scripts/gsm8k_qg_validation.sh OUT                  # cpu-gsm8k's QG recipe, then validate it
#   bash scripts/gsm8k_qg_validation.sh OUT NAME QG QA       # validate a trained pair as NAME
#
# The first form trains QG as configs/cpu-gsm8k.toml does (batch 4, one epoch, 600 problems: 37 steps)
# and a QA at batch 1 on the same chains, into OUT/qg-b4 and OUT/qa. The second validates any pair,
# e.g. the 2,400-problem run's: `... runs/val19 b1-2400 results/cpu-gsm8k-2400/students/iterative/{qg,qa}`.
# For each pair, `scripts/qg_end_decisions.py` checks the end decision teacher-forced, and the pair
# solves the validation problems with the llama.cpp engine, plain, with --stop-on-repeat and with
# --retry-repeats 3 --stop-on-repeat (RULES="plain stop" for fewer);
# `socratic evaluate` prints accuracy, steps per problem, cut-offs and repeats of every pair so far.
# Rerunning continues: finished students and predictions are kept, training resumes from checkpoints.
# THREADS=1 when the machine is shared: two threads that wait on each other crawl on busy cores.
#   THREADS=1 nohup nice bash scripts/gsm8k_qg_validation.sh runs/val19 > runs/val19.log 2>&1 &
set -euo pipefail
out=${1:-runs/val19}
threads=${THREADS:-2}
mkdir -p "$out"
val=(--dataset gsm8k --split train --offset 7173 --limit 300 --engine llamacpp --batch-size 64
     --max-steps 10 --calculator --threads "$threads")

if [ $# -ge 4 ]; then
    name=$2 qg=$3 qa=$4
else
    name=b4 qg=$out/qg-b4 qa=$out/qa
    train=(--chains "$out/chains.jsonl" --model smollm2-135m --limit 600 --learning-rate 1e-4
           --max-length 1024 --epochs 1 --save-steps 25 --threads "$threads")
    # (the chains of the first 2,400 problems: the QG of the 600 first is trained on a prefix of them)
    socratic annotate --dataset gsm8k --split train --limit 2400 --teacher human --out "$out/chains.jsonl"
    socratic train --method qa "${train[@]}" --batch-size 1 --out "$qa"
    socratic train --method qg "${train[@]}" --batch-size 4 --out "$qg"
fi

[ -s "$out/end-decisions.$name.txt" ] ||
    OMP_NUM_THREADS=$threads python scripts/qg_end_decisions.py "$qg" --offset 7173 --limit 300 > "$out/end-decisions.$name.txt"
cat "$out/end-decisions.$name.txt"
# RULES: which loop rules to validate (plain; stop: --stop-on-repeat; retry: a repeated subquestion is
# asked again, sampled, up to 3 times, and the problem ends if all 3 repeat too).
for rule in ${RULES:-plain stop retry}; do
    case $rule in
        plain) flags=() ;;
        stop) flags=(--stop-on-repeat) ;;
        retry) flags=(--retry-repeats 3 --stop-on-repeat) ;;
        *) echo "unknown rule $rule (plain, stop, retry)" >&2; exit 2 ;;
    esac
    socratic solve --method iterative --qg "$qg" --qa "$qa" "${val[@]}" "${flags[@]}" \
        --out "$out/predictions.$name.$rule.jsonl"
done
socratic evaluate "$out"/predictions.*.jsonl | tee "$out/evaluate.txt"
