#!/usr/bin/env bash
# Issue 19, part 1: which QG recipe learns to stop on GSM8K? Decided on a validation slice carved from
# the training split (problems 7,173-7,472, the last 300, never trained on); the test split is not read.
# Every candidate trains QG on the human Socratic chains of the first 600 training problems (as
# configs/cpu-gsm8k.toml), pairs it with one shared QA student, and solves the 300 validation problems
# with the llama.cpp engine, plain and with --stop-on-repeat; `scripts/qg_end_decisions.py` checks the
# end decision teacher-forced, and `socratic evaluate` prints accuracy, steps, cut-offs and repeats.
#   nohup nice -n 19 bash scripts/gsm8k_qg_validation.sh runs/val19 > runs/val19.log 2>&1 &
# Rerunning continues: finished students and predictions are kept, training resumes from checkpoints.
# THREADS=1 when the machine is shared: two threads that wait on each other crawl on busy cores.
set -euo pipefail
out=${1:-runs/val19}
mkdir -p "$out"
train=(--chains "$out/chains.jsonl" --model smollm2-135m --limit 600 --learning-rate 1e-4 --max-length 1024
       --save-steps 25 --threads "${THREADS:-2}")
val=(--dataset gsm8k --split train --offset 7173 --limit 300 --engine llamacpp --batch-size 64
     --max-steps 10 --calculator --threads "${THREADS:-2}")

socratic annotate --dataset gsm8k --split train --limit 2400 --teacher human --out "$out/chains.jsonl"
socratic train --method qa "${train[@]}" --epochs 1 --batch-size 1 --out "$out/qa"
for candidate in "b4 --batch-size 4 --epochs 1" "b1 --batch-size 1 --epochs 1" "b1e3 --batch-size 1 --epochs 3"; do
    set -- $candidate
    name=$1; shift
    socratic train --method qg "${train[@]}" "$@" --out "$out/qg-$name"
    OMP_NUM_THREADS="${THREADS:-2}" python scripts/qg_end_decisions.py "$out/qg-$name" --offset 7173 --limit 300 | tee "$out/end-decisions.qg-$name.txt"
    for rule in plain stop; do
        flags=(); [ "$rule" = stop ] && flags=(--stop-on-repeat)
        socratic solve --method iterative --qg "$out/qg-$name" --qa "$out/qa" "${val[@]}" "${flags[@]}" \
            --out "$out/predictions.qg-$name.$rule.jsonl"
    done
    socratic evaluate "$out"/predictions.qg-*.jsonl | tee "$out/evaluate.txt"
done
