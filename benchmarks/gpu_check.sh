#!/usr/bin/env bash
# Issue 32's GPU path, as one prepared run of a few minutes on a lent CUDA machine where nothing can be
# downloaded (benchmarks/gpu_check.py says what it measures; everything goes to $OUT or /tmp/gpu-check).
#
#   here, once (needs the package registry):  bash benchmarks/gpu_bundle.sh
#       writes .device/ (git ignores it): the wheels a GPU image with PyTorch lacks (TRL, datasets, ...;
#       pinned to this checkout's versions) and SmolLM2's tokenizer and config, ~23 MB
#   there, from the repository's root:         bash benchmarks/gpu_check.sh   (carry .device along)
#   a dry run on a CPU, a few minutes:         GPU_CHECK_PROBLEMS=8 GPU_CHECK_LAYERS=2 GPU_CHECK_COMPILE=0 \
#                                                  GPU_CHECK_SOLVE_PROBLEMS=4 bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
out=${OUT:-/tmp/gpu-check}
bundle=${GPU_CHECK_BUNDLE:-.device}
mkdir -p "$out"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi"; } > "$out/gpu.txt" 2>&1
# Only what this Python lacks comes from the bundle: where TRL is installed (a checkout set up as the README
# says) the installed packages run, so a CPU dry run checks this checkout's own environment.
if ! "$python" -c "import trl" 2>/dev/null; then
    [ -d "$bundle/wheels" ] || { echo "no TRL here and no $bundle/wheels: run benchmarks/gpu_bundle.sh first" >&2; exit 2; }
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$bundle"/wheels/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
"$python" -c "import socratic" 2>/dev/null || export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 OUT="$out" GPU_CHECK_BUNDLE="$bundle"
"$python" benchmarks/gpu_check.py 2>&1 | tee "$out/log.txt"
