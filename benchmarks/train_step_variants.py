"""Where a CPU training step's time goes: one packed 1,024-token row of SmolLM2-135M (4 examples of 256
tokens), forward + backward + AdamW, in the variants the profile pointed to, alternating, medians.

    bash benchmarks/quiet.sh python benchmarks/train_step_variants.py A,B,E,C,D,F --repeats 4
    python benchmarks/train_step_variants.py A,B --profile        # also torch.profiler's table of one A step

    A  float32 weights, bf16 autocast, AdamW per tensor, transformers' block mask (the plain loop)
    B  A with fused AdamW
    E  B with per-example attention (socratic.training.packed_attention)      <- `socratic train`'s default
    C  E with bf16 weights and float32 master weights in the optimizer (no autocast casts)
    D  C under torch.compile
    F  E under torch.compile
    G  E with each decoder layer's MLP and norms compiled (regional: attention stays eager)

Random token ids, so losses are large; what matters is that variants of the same arithmetic (A, B, E,
F) print the same loss and the bf16-weight ones (C, D) show how far they drift. On a CPU without
native bf16 (AVX2 alone) A, B, E, F and G compute in float32, as `socratic train` does there, and C
and D are refused (emulated bf16 is ~150x slower there).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from socratic.training.packed_attention import register
from socratic.training.trainer import native_bf16
from socratic.weights import models


class MasterWeights:
    """bf16 model weights, with float32 copies that the (fused) AdamW updates and copies back."""

    def __init__(self, params):
        self.params = [p for p in params if p.requires_grad]
        self.master = [p.detach().float().clone().requires_grad_() for p in self.params]
        self.optimizer = torch.optim.AdamW(self.master, lr=1e-5, fused=True)

    def step(self) -> None:
        for p, m in zip(self.params, self.master, strict=True):
            m.grad = p.grad.float()
        self.optimizer.step()
        with torch.no_grad():
            for p, m in zip(self.params, self.master, strict=True):
                p.copy_(m)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None


def make_step(variant: str, ids, positions, labels):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(models.resolve("smollm2-135m"), attn_implementation="sdpa")
    model.train()
    if variant != "A":
        model.config._attn_implementation = register() if variant != "B" else "sdpa"
    autocast = variant in ("A", "B", "E", "F", "G") and native_bf16(gpu=False)
    if variant in ("A", "B", "E", "F", "G"):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=variant != "A")
    else:
        model.to(torch.bfloat16)
        optimizer = MasterWeights(model.parameters())
    forward = torch.compile(model) if variant in ("D", "F") else model
    if variant == "G":
        for layer in model.model.layers:
            for name in ("mlp", "input_layernorm", "post_attention_layernorm"):
                setattr(layer, name, torch.compile(getattr(layer, name), dynamic=True))

    def step() -> tuple[float, float]:
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = forward(input_ids=ids, position_ids=positions, labels=labels, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - started, loss.item()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", help="comma-separated letters (see above)")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    ids = torch.randint(0, 49000, (1, 1024))
    positions = torch.cat([torch.arange(256)] * 4).unsqueeze(0)
    labels = ids.clone()
    labels[:, ::3] = -100
    variants = args.variants.split(",")
    if not native_bf16(gpu=False) and {"C", "D"} & set(variants):
        parser.error("C and D train in bf16 weights, which this CPU only emulates")
    steps = {v: make_step(v, ids, positions, labels) for v in variants}
    for v in variants:
        seconds, _ = steps[v]()  # warm-up (and compilation)
        print(f"{v} first step {seconds:.1f} s", flush=True)
    times: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.repeats):
        for v in variants:
            seconds, loss = steps[v]()
            times[v].append(seconds)
            print(f"{v} {seconds:6.2f} s  loss {loss:.3f}", flush=True)
    for v in variants:
        median = statistics.median(times[v])
        print(f"{v} median {median:.2f} s = {1024 / median:.1f} tokens/s")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            steps[variants[0]]()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


if __name__ == "__main__":
    main()
