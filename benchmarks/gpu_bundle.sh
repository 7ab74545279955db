#!/usr/bin/env bash
# What benchmarks/gpu_check.sh needs on a lent GPU machine that cannot download anything, into .device/
# (or $1): the pure-Python wheels its image (Python 3.12 with PyTorch, transformers, accelerate, peft,
# tokenizers) lacks or holds in other versions, pinned to the versions installed here, and SmolLM2-135M's
# tokenizer and config (no weights: the check builds its student from the config). ~21 MB, under the
# 64 MiB a device call carries. Run from a checkout set up as the README says (pip reaches the registry).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.device}
python=${PYTHON:-python}
pinned=$("$python" - <<'PY'
import importlib.metadata as metadata
names = ["trl", "transformers", "accelerate", "peft", "datasets", "dill", "multiprocess", "gguf", "huggingface_hub"]
print(" ".join(f"{name}=={metadata.version(name)}" for name in names))
PY
)
rm -rf "$dest/wheels" "$dest/tokenizer"
mkdir -p "$dest/wheels"
# --python-version 3.12: the image's Python (multiprocess ships one wheel a Python version).
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dest/wheels" $pinned
"$python" - "$dest/tokenizer" <<'PY'
import shutil, sys
from pathlib import Path
from socratic.weights import models
source, target = models.resolve("smollm2-135m"), Path(sys.argv[1])
target.mkdir(parents=True)
for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
    if (source / name).exists():
        shutil.copy(source / name, target / name)
PY
du -sh "$dest"
echo "now, on the GPU machine: bash benchmarks/gpu_check.sh (carrying $dest)"
