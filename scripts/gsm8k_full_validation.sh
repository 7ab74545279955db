#!/usr/bin/env bash
# Issue 33: the decisions of cpu-gsm8k-full, taken on the validation slice (GSM8K training problems
# 7,173-7,472, the split's last 300, never trained on); the test split is not read.
#
#   bash scripts/gsm8k_full_validation.sh OUT                 # every stage, in order
#   bash scripts/gsm8k_full_validation.sh OUT recipe qg       # some stages (recipe, qg, rule, sc)
#
# Stages, each deciding what the next one takes as given (set by the variables in capitals):
#   recipe  epochs, peak learning rate and schedule, on the unified student (every student of the run gets
#           the same budget): RECIPES names candidates e<epochs>_lr<peak>_<linear|cosine|constant>;
#           each is trained, then scored by its loss on the slice's human chains
#           (scripts/validation_loss.py) and its accuracy there.                -> RECIPE
#   qg      QG candidates against the repeat failure, each with the QA of RECIPE: base (RECIPE itself),
#           ul<U> (--repeat-unlikelihood U), dw<W> (--decision-weight W), e<N> (N epochs for QG alone,
#           to be reported as such), gemma (Gemma 3 270M as QG); each scored by the teacher-forced
#           repeat preference and end decision (scripts/qg_end_decisions.py) and the pair's accuracy
#           with the plain loop.                                                 -> QG
#   rule    the loop rule for QG's pair: plain, stop (--stop-on-repeat), retry (--retry-repeats 3
#           --stop-on-repeat); and the oracle row (QA on the human subquestions), the pair's ceiling.
#                                                                                -> RULE
#   sc      self-consistency over decompositions with RULE: SC_K decompositions a problem, QG sampled
#           at each of SC_TEMPERATURES, QA greedy; scripts/vote_curve.py gives accuracy and tokens for
#           every k up to SC_K from the one run.                                 -> k, temperature
# Each stage ends with `socratic evaluate` over every validation predictions file so far
# (OUT/evaluate.txt) and, for sc, OUT/vote_curve.txt.
#
# Cost on 2 Sapphire Rapids cores at an assumed ~160 training tokens/s (an estimate; the run's own
# speed is being measured): one epoch of one student on all 7,173 problems is ~1.74M tokens, ~3 h;
# the default RECIPES train 1+1+1+2+3 = 8 epochs of unified (~24 h), the qg stage a QA and five QGs
# (~20 h, Gemma 3 270M about twice the others); a validation solve of the pair ~10-20 min, the sc
# stage SC_K times that per temperature. PROBLEMS=2400 decides on the first 2,400 problems instead, in
# a third of the time (the cpu-gsm8k-2400 scale; say so where the decision is reported).
# Rerunning continues: finished students and predictions are kept, training resumes from checkpoints.
# THREADS=1 when the machine is shared: two threads that wait on each other crawl on busy cores.
#   THREADS=1 nohup nice bash scripts/gsm8k_full_validation.sh runs/val33 > runs/val33.log 2>&1 &
set -euo pipefail
out=${1:?usage: gsm8k_full_validation.sh OUT [recipe qg rule sc]}
shift
stages=${*:-recipe qg rule sc}
threads=${THREADS:-2}
problems=${PROBLEMS:-7173}
RECIPES=${RECIPES:-e1_lr1e-4_linear e1_lr3e-4_linear e1_lr1e-4_cosine e2_lr1e-4_linear e3_lr1e-4_linear}
RECIPE=${RECIPE:-e1_lr1e-4_linear}
QG_CANDIDATES=${QG_CANDIDATES:-base ul0.5 ul2 dw3 e2 gemma}
QG=${QG:-base}
RULE=${RULE:-retry}
SC_K=${SC_K:-5}
SC_TEMPERATURES=${SC_TEMPERATURES:-0.5 0.7 1.0}
if [ "$problems" -gt 7173 ]; then
    echo "PROBLEMS=$problems reaches the validation slice (problems 7,173-7,472): at most 7173" >&2
    exit 2
fi
mkdir -p "$out"
val=(--dataset gsm8k --split train --offset 7173 --limit 300 --engine llamacpp --batch-size 64
     --max-steps 10 --calculator --threads "$threads")

recipe_flags() {  # e2_lr1e-4_cosine -> --epochs 2 --learning-rate 1e-4 --lr-schedule cosine
    local epochs rate schedule
    IFS=_ read -r epochs rate schedule <<< "$1"
    [[ $epochs == e* && $rate == lr* && $schedule =~ ^(linear|cosine|constant)$ ]] ||
        { echo "bad recipe name $1 (e<N>_lr<rate>_<linear|cosine|constant>)" >&2; exit 2; }
    echo --epochs "${epochs#e}" --learning-rate "${rate#lr}" --lr-schedule "$schedule"
}

qg_flags() {  # a QG candidate's flags on top of RECIPE's
    case $1 in
        base) echo "" ;;
        ul*) echo --repeat-unlikelihood "${1#ul}" ;;
        dw*) echo --decision-weight "${1#dw}" ;;
        e*) echo --epochs "${1#e}" ;;
        gemma) echo --model gemma3-270m ;;
        *) echo "unknown QG candidate $1 (base, ul<U>, dw<W>, e<N>, gemma)" >&2; exit 2 ;;
    esac
}

rule_flags() {
    case $1 in
        plain) echo "" ;;
        stop) echo --stop-on-repeat ;;
        retry) echo --retry-repeats 3 --stop-on-repeat ;;
        *) echo "unknown rule $1 (plain, stop, retry)" >&2; exit 2 ;;
    esac
}

# Every name checked before hours of work (in this shell: an exit inside $(...) would not stop the script).
for name in $RECIPES $RECIPE; do recipe_flags "$name" > /dev/null; done
for name in $QG_CANDIDATES $QG; do qg_flags "$name" > /dev/null; done
rule_flags "$RULE" > /dev/null
for stage in $stages; do
    [[ $stage =~ ^(recipe|qg|rule|sc)$ ]] || { echo "unknown stage $stage (recipe, qg, rule, sc)" >&2; exit 2; }
done
# The chains of problems 0-7,172 (cpu-gsm8k-full's); train's --limit takes the first PROBLEMS of them.
socratic annotate --dataset gsm8k --split train --limit 7173 --teacher human --out "$out/chains.jsonl"
common=(--chains "$out/chains.jsonl" --limit "$problems" --max-length 1024 --batch-size 1 --save-steps 50
        --threads "$threads")

evaluate() {
    socratic evaluate "$out"/predictions.*.jsonl | tee "$out/evaluate.txt"
}

qa=$out/recipe/$RECIPE/qa
for stage in $stages; do
    case $stage in
    recipe)
        for name in $RECIPES; do
            folder=$out/recipe/$name
            mkdir -p "$folder"
            # shellcheck disable=SC2046  # the flags are words
            socratic train --method unified --model smollm2-135m "${common[@]}" $(recipe_flags "$name") \
                --out "$folder/unified"
            [ -s "$folder/val-loss.unified.txt" ] ||
                OMP_NUM_THREADS=$threads python scripts/validation_loss.py "$folder/unified" \
                    > "$folder/val-loss.unified.txt"
            cat "$folder/val-loss.unified.txt"
            socratic solve --method unified --model "$folder/unified" "${val[@]}" --max-new-tokens 256 \
                --out "$out/predictions.unified.$name.jsonl"
        done
        evaluate ;;
    qg)
        # shellcheck disable=SC2046
        socratic train --method qa --model smollm2-135m "${common[@]}" $(recipe_flags "$RECIPE") --out "$qa"
        for name in $QG_CANDIDATES; do
            qg=$out/recipe/$RECIPE/qg-$name
            # shellcheck disable=SC2046  # a candidate's own --model or --epochs comes last, so it wins
            socratic train --method qg --model smollm2-135m "${common[@]}" $(recipe_flags "$RECIPE") \
                $(qg_flags "$name") --out "$qg"
            [ -s "$out/end-decisions.$name.txt" ] ||
                OMP_NUM_THREADS=$threads python scripts/qg_end_decisions.py "$qg" --offset 7173 --limit 300 \
                    > "$out/end-decisions.$name.txt"
            cat "$out/end-decisions.$name.txt"
            socratic solve --method iterative --qg "$qg" --qa "$qa" "${val[@]}" \
                --out "$out/predictions.pair.$name.plain.jsonl"
        done
        evaluate ;;
    rule)
        for rule in plain stop retry; do
            # shellcheck disable=SC2046
            socratic solve --method iterative --qg "$out/recipe/$RECIPE/qg-$QG" --qa "$qa" "${val[@]}" \
                $(rule_flags "$rule") \
                --out "$out/predictions.pair.$QG.$rule.jsonl"
        done
        socratic solve --method iterative --qa "$qa" --oracle "${val[@]}" --out "$out/predictions.pair.oracle.jsonl"
        evaluate ;;
    sc)
        files=()
        for t in $SC_TEMPERATURES; do
            file=$out/predictions.sc.$QG.$RULE.t$t.jsonl
            # shellcheck disable=SC2046
            socratic solve --method iterative --qg "$out/recipe/$RECIPE/qg-$QG" --qa "$qa" "${val[@]}" \
                $(rule_flags "$RULE") \
                --samples "$SC_K" --qg-temperature "$t" --out "$file"
            files+=("$file")
        done
        python scripts/vote_curve.py "${files[@]}" | tee "$out/vote_curve.txt"
        evaluate ;;
    esac
done
