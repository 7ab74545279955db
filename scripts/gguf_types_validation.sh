#!/usr/bin/env bash
# Solving from bf16 or q8_0 GGUFs instead of f32 (issue 32, part 3), decided on validation: the unified
# student and the iterative pair of a finished `socratic run --config default` (the run folder, $1) solve
# SVAMP training problems 300-599 (no shipped chain covers them) from each weight type, with the demo's
# own solve settings. Each type is exported first, so the solve times compare decoding alone; the types
# alternate within each method. Then scripts/compare_predictions.py prints, per type against f32:
# accuracy, the exact McNemar p, the share of identical outputs and the solve time. Usage:
#   bash scripts/gguf_types_validation.sh runs/default-YYYYMMDD-HHMMSS OUT_FOLDER [TYPES]
set -euo pipefail
run=$1 out=$2 types=${3:-"f32 bf16 q8_0"}
mkdir -p "$out"
python - "$run" $types <<'EOF'
import sys
from pathlib import Path

from socratic.weights.student_folder import student_gguf

run, types = Path(sys.argv[1]), sys.argv[2:]
for folder in (run / "students/unified", run / "students/iterative/qg", run / "students/iterative/qa"):
    for kind in types:
        student_gguf(folder, kind)  # exported once, before any solve is timed
EOF
for method in unified iterative; do
    students=(--model "$run/students/$method")
    [ "$method" = iterative ] && students=(--qg "$run/students/iterative/qg" --qa "$run/students/iterative/qa")
    for kind in $types; do
        socratic solve --config default --method "$method" "${students[@]}" --gguf-type "$kind" \
            --split train --offset 300 --limit 300 --out "$out/$method-$kind.jsonl"
    done
done
for method in unified iterative; do
    files=()
    for kind in $types; do files+=("$out/$method-$kind.jsonl"); done
    python scripts/compare_predictions.py "${files[@]}"
done
