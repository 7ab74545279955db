#!/usr/bin/env bash
# What benchmarks/gpu_check.sh needs on a lent GPU machine that cannot download anything, into .device/
# (or $1): SmolLM2-135M's tokenizer and config (no weights: the check builds its student from the config),
# and wheels for the pure-Python part of what socratic's training and solving import (TRL, transformers,
# accelerate, peft, datasets, gguf, huggingface_hub and everything they need in turn), pinned to the
# versions installed here. Compiled packages (torch, numpy, tokenizers, safetensors, pyarrow, pandas, ...)
# are not bundled: a GPU image with PyTorch has them, and the check prints every version it runs with.
# ~23 MB, under the 64 MiB a device call carries. Run from a checkout set up as the README says.
#   GPU_BUNDLE_PYTHON=3.12 (default): the Python version of the machine the wheels are for.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.device}
python=${PYTHON:-python}
pinned=$("$python" - <<'PY'
import importlib.metadata as metadata
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOTS = ["trl", "transformers", "accelerate", "peft", "datasets", "gguf", "huggingface_hub"]
# torch: compiled and large; typer: the command lines of transformers and huggingface_hub, which the check does
# not use (it needs pydantic, whose core is compiled). Below, whatever is compiled is left to the image too.
LEFT_TO_THE_IMAGE = {"torch", "typer"}
marker_env = {"python_version": "3.12", "platform_machine": "x86_64", "sys_platform": "linux", "extra": ""}
found, todo = {}, list(ROOTS)
while todo:
    name = canonicalize_name(todo.pop())
    if name in found or name in LEFT_TO_THE_IMAGE:
        continue
    dist = metadata.distribution(name)
    found[name] = dist
    for line in dist.requires or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(marker_env):
            todo.append(requirement.name)
pure = [f"{name}=={dist.version}" for name, dist in sorted(found.items())
        if "Root-Is-Purelib: true" in (dist.read_text("WHEEL") or "")]
print(" ".join(pure))
PY
)
rm -rf "$dest/wheels" "$dest/tokenizer"
mkdir -p "$dest/wheels"
# multiprocess ships one wheel per Python version, so the target's version is named.
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version "${GPU_BUNDLE_PYTHON:-3.12}" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$dest/wheels" $pinned
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
ls "$dest/wheels"
du -sh "$dest"
echo "now, on the GPU machine: bash benchmarks/gpu_check.sh (carrying $dest)"
