"""Forward + backward time of one packed 1,024-token row of SmolLM2-135M, float32 against bf16 autocast,
alternating three times each (the measurement behind `socratic train`'s bf16 default on CPUs).

    python benchmarks/cpu_bf16_step.py
"""

import time

import torch
from transformers import AutoModelForCausalLM

from socratic.weights import models

torch.manual_seed(0)
m = AutoModelForCausalLM.from_pretrained(models.resolve("smollm2-135m"), attn_implementation="sdpa")
m.train()
ids = torch.randint(0, 49000, (1, 1024))
pos = torch.cat([torch.arange(256)] * 4).unsqueeze(0)
labels = ids.clone()
labels[:, ::3] = -100


def step(bf16):
    t = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = m(input_ids=ids, position_ids=pos, labels=labels, use_cache=False).loss
    loss.backward()
    m.zero_grad(set_to_none=True)
    return time.perf_counter() - t


for bf16 in [False, True, False, True, False, True]:
    print("bf16" if bf16 else "fp32", round(step(bf16), 2), flush=True)
