"""What socratic adds to TRL's `SFTTrainer`, apart from the data and the recipe (`socratic.training.train`).

- `trainer_class` / `completion_loss`: the loss on the trained tokens' logits alone, and
  `--decision-weight` (the first token of every trained line counted W times; for QG: ask or end),
  and `--repeat-unlikelihood` (`copy_targets`: QG is taught not to ask again what its chain asked).
- `packed_logits_match`: whether a model keeps packed examples apart, checked before training.
- `native_bf16`, `training_bf16`, `checkpointing_args`, `optimizer_name`: the hardware switches, named as
  this transformers knows them; `activation_checkpointing`, `recomputed_layers`: whether (and for how many
  layers) the trainer really recomputes activations.
- `progress_bar`, `write_loss_curve`: the one progress bar of a training, and `loss.jsonl` / `loss.png`.
- `stop_when_not_finite`: a loss or weights that are no longer numbers end the training before they are saved.
- `release_memory_each_step`: what an optimizer step freed goes back to the system before the next one.
- `no_checkpoint_at_the_end`: `--no-final-checkpoint`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from socratic.core.errors import SocraticError

log = logging.getLogger(__name__)


def trainer_class(sft_trainer: type, decision_weight: float = 1.0, repeat_unlikelihood: float = 0.0) -> type:
    """TRL's trainer with socratic's loss: next-token cross-entropy over the trained (completion) tokens,
    computed from the logits of those positions alone, with `--decision-weight` the first token of
    every trained line counted W times, and with `--repeat-unlikelihood` a term against copying an
    earlier trained line of the same example (`completion_loss`).

    Why not TRL's own loss: on a device without Triton, TRL scores every position (prompt tokens too)
    and derives its entropy and token-accuracy metrics from float32 copies of each 4,096 x 32,768 tile of
    logits, several passes over ~0.5 GB a tile; on 2 CPU cores that was a large share of a step
    (benchmarks/train_mfu.py). Here the model computes the logits of the trained positions only
    (`logits_to_keep`, through the model's own forward, so DDP, FSDP, PEFT and each family's logit
    scaling apply as usual) and one cross-entropy reads them. The two metrics are not logged."""
    loss_of = completion_loss(decision_weight, repeat_unlikelihood)

    class CompletionLossTrainer(sft_trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs["labels"]
            keep = trained_positions(labels) if _takes_logits_to_keep(model) else None
            extra = {"logits_to_keep": keep} if keep is not None else {}
            dropped = _SHAPE_VARYING_KEYS if self.args.torch_compile else ()
            model_inputs = {k: v for k, v in inputs.items() if k != "labels" and k not in dropped}
            outputs = model(**model_inputs, use_cache=False, **extra)
            loss = loss_of(outputs.logits, labels, keep, num_items_in_batch, inputs.get("position_ids"))
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes  # as TRL: DDP averages gradients over the ranks
            return (loss, outputs) if return_outputs else loss

    return CompletionLossTrainer


# What TRL's padding-free collator adds for flash-attention kernels: the examples' boundaries, whose sizes
# change every step. The SDPA and per-example attention read the position ids instead, so under
# --torch-compile they are left out: as inputs of the compiled graph they would recompile it each step.
_SHAPE_VARYING_KEYS = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")


def trained_positions(labels: Any) -> Any:
    """The positions whose next token is trained in some row of `labels` (batch, tokens): the only ones
    whose logits the loss reads."""
    return (labels[:, 1:] != -100).any(dim=0).nonzero().flatten()


def completion_loss(weight: float, repeat_unlikelihood: float = 0.0) -> Any:
    """The loss of `trainer_class`: `logits` (batch, kept, vocab) are those of the positions `keep`
    (None: every position) of rows whose labels are `labels` (batch, tokens); `position_ids` (batch,
    tokens), where given, mark where each packed example starts (position 0).

    With weight W != 1, the first token of each run of trained tokens counts W times. In QG's training
    text every QG line follows a QA line, so that token is where QG decides whether the problem needs
    another subquestion ("Q") or is done (the end marker): one decision against ~15 tokens of wording a
    line, which is how a QG can learn the wording and not when to stop.

    With `repeat_unlikelihood` U > 0, each token of `copy_targets` (the token that would have kept a
    trained line a copy of an earlier line of its example, where the two part) adds U x -log(1 - p) of
    that token (unlikelihood training, Welleck et al. 2019, "Neural text generation with unlikelihood
    training"), counted like one trained token. A QG line copies an earlier one token by token, so the
    copy is decided where the lines part, the one place the teacher-forced text is on the copy's path;
    later tokens of the line are conditioned on its own words, not the copy's, and are left alone. One
    token per line and earlier line (on GSM8K's QG text about 1 in 10 trained tokens): the term costs
    one logsumexp per copy token, after the labels are read (benchmarks/repeat_unlikelihood_cost.py).
    """

    def loss(
        logits: Any, labels: Any, keep: Any = None, num_items_in_batch: Any = None, position_ids: Any = None
    ) -> Any:
        import torch
        import torch.nn.functional as F

        if keep is None:
            keep = torch.arange(labels.shape[1] - 1, device=labels.device)
            logits = logits[:, :-1]
        targets = labels[:, keep + 1]
        trained = targets != -100
        first = trained & (labels[:, keep] == -100)  # trained, after an untrained token
        weights = trained.float() + (weight - 1.0) * first.float()
        losses = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1).clamp(min=0), reduction="none"
        )
        total = (losses * weights.reshape(-1)).sum()
        if repeat_unlikelihood:
            total = total + repeat_unlikelihood * copy_penalty(logits, labels, keep, position_ids)
        count = num_items_in_batch if num_items_in_batch is not None else trained.sum()
        return total / torch.as_tensor(count, device=losses.device).clamp(min=1)

    return loss


def copy_targets(labels: Sequence[int], starts: Sequence[int] = (0,)) -> list[tuple[int, int]]:
    """(position, token): where a trained line would copy an earlier one of the same example. `labels` is
    one row (-100: untrained), `starts` the positions where its packed examples begin.

    A line is a run of trained labels (for QG: a subquestion line or the end marker). For each line
    and each earlier line of its example, the first index where the two differ gives one pair: the
    position of the line's label there, and the earlier line's token at that index; a line that is a
    prefix of an earlier one (or the other way round) gives none. (The end marker parts from every
    subquestion at its first token: there the pair is the "Q" that would ask once more.) The position
    is the label's; its logits are the previous position's."""
    found = set()
    for lines in _lines_by_example(labels, starts):
        for n, line in enumerate(lines):
            for earlier in lines[:n]:
                shared = min(len(line), len(earlier))
                index = next((j for j in range(shared) if line[j][1] != earlier[j][1]), None)
                if index is not None:
                    found.add((line[index][0], earlier[index][1]))
    return sorted(found)


def _lines_by_example(labels: Sequence[int], starts: Sequence[int]) -> list[list[list[tuple[int, int]]]]:
    """The runs of trained labels of one row, as (position, token) lists, grouped by packed example. A
    label where an example starts is not predicted from that example's text, so it is in no run."""
    bounds = {0, *starts}
    examples: list[list[list[tuple[int, int]]]] = []
    for position, token in enumerate(labels):
        if position in bounds:
            examples.append([])
            continue
        if token == -100:
            continue
        lines = examples[-1]
        if not lines or lines[-1][-1][0] != position - 1:
            lines.append([])
        lines[-1].append((position, token))
    return examples


def copy_penalty(logits: Any, labels: Any, keep: Any, position_ids: Any = None) -> Any:
    """The sum of -log(1 - p) over `copy_targets` of every row: p is the probability `logits` (batch, kept,
    vocab, of the positions `keep`) give the copying token where the line parts from the earlier one."""
    import torch

    rows, kept, tokens = [], [], []
    index_of = {position: i for i, position in enumerate(keep.tolist())}
    for row, row_labels in enumerate(labels.tolist()):
        starts = (position_ids[row] == 0).nonzero().flatten().tolist() if position_ids is not None else [0]
        for position, token in copy_targets(row_labels, starts):
            rows.append(row)
            kept.append(index_of[position - 1])  # the logits that predict the label at `position`
            tokens.append(token)
    if not rows:
        return logits.new_zeros(())
    chosen = logits[rows, kept].float()  # (copies, vocab)
    log_p = chosen[torch.arange(len(rows), device=chosen.device), tokens] - chosen.logsumexp(-1)
    # log(1 - p) from log p without cancellation: log(-expm1(log p)); p is kept below 1 so it stays finite.
    return -torch.log(-torch.expm1(log_p.clamp(max=-1e-6))).sum()


def _takes_logits_to_keep(model: Any) -> bool:
    """Whether the causal LM under any DDP/PEFT wrappers accepts `logits_to_keep` (transformers' own
    families do; a model that does not gets every position's logits)."""
    import inspect

    inner = getattr(model, "module", model)
    inner = inner.get_base_model() if hasattr(inner, "get_base_model") else inner
    return "logits_to_keep" in inspect.signature(type(inner).forward).parameters


def packed_logits_match(model: Any) -> bool:
    """Whether `model` keeps packed examples apart: the logits of a short sequence packed after another
    (each with its own position ids, no attention mask, as the trainer feeds packed rows) equal its
    logits alone. Transformers builds the block-diagonal mask from the position ids only where a
    model's attention asks for it, so this is checked on the model itself, not assumed per family."""
    import torch

    generator = torch.Generator().manual_seed(0)
    vocab = min(model.config.vocab_size, 1000)
    first, second = (torch.randint(0, vocab, (1, n), generator=generator) for n in (7, 9))
    ids = torch.cat([first, second], dim=1).to(model.device)
    positions = torch.cat([torch.arange(7), torch.arange(9)])[None].to(model.device)
    was_training = model.training
    model.eval()  # no dropout (GPT-2 has some) while comparing
    try:
        with torch.no_grad():
            packed = model(input_ids=ids, position_ids=positions, use_cache=False).logits[0, 7:].float()
            alone = model(input_ids=ids[:, 7:], use_cache=False).logits[0].float()
    finally:
        model.train(was_training)
    # float32 agrees to ~1e-7 (measured on tiny GPT-2, Qwen2, Llama); cross-talk moves logits by ~30-100% of
    # their largest value. bf16 arithmetic gets a wider margin.
    tolerance = (1e-3 if model.dtype == torch.float32 else 3e-2) * (1 + alone.abs().max().item())
    return (packed - alone).abs().max().item() <= tolerance


def packing_is_exact(model: Any, name: str) -> bool:
    from transformers.integrations import is_deepspeed_zero3_enabled

    # With ZeRO-3, or FSDP loading on the main process only, this process may not hold the weights yet; every
    # process must decide alike, so the check is skipped (the families tested here all pass it).
    if is_deepspeed_zero3_enabled() or os.environ.get("FSDP_CPU_RAM_EFFICIENT_LOADING", "").lower() in ("1", "true"):
        return True
    if packed_logits_match(model):
        return True
    log.warning(
        "%s (%s): its attention does not keep packed examples apart, so packing is off for it (padded rows)",
        name,
        type(model).__name__,
    )
    return False


def attends_per_example(model: Any, name: str) -> bool:
    """Whether `model` keeps packed examples apart with the per-example attention too: a family whose
    attention does not go through transformers' attention functions, or does not hand them the position
    ids, would attend across examples, and then trains with the block mask instead."""
    from socratic.training.packed_attention import training_attention

    with training_attention(model, True):
        if packed_logits_match(model):
            return True
    log.warning("%s (%s): per-example attention does not fit it: the block mask is used", name, type(model).__name__)
    return False


def checkpointing_args(enabled: bool, every: int = 1) -> dict[str, Any]:
    """The trainer's activation-checkpointing switch, under the name this transformers knows
    (`gradient_checkpointing` warns that it is deprecated from transformers 5.x), stated both ways: TRL's
    `SFTConfig` turns checkpointing on by default, so leaving the switch out when it is off recomputed
    every layer's forward pass in the backward pass for all students (CPU steps 1.09x as long at rows of
    1,024, 1.15x at 512: docs/RESULTS.md). With `every` > 1 (`--recompute-every`) only every `every`-th
    layer is recomputed, by transformers' own `every_n_layers`."""
    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    new_names = "activation_checkpointing" in names
    switch = {"activation_checkpointing" if new_names else "gradient_checkpointing": enabled}
    if not enabled or every == 1:
        return switch
    if not _checkpoints_every_n_layers():
        raise SocraticError(
            f"--recompute-every {every}: this transformers recomputes all layers or none; "
            "it needs a transformers whose models take every_n_layers (5.x), or --recompute-every 1"
        )
    kwargs = "activation_checkpointing_kwargs" if new_names else "gradient_checkpointing_kwargs"
    return {**switch, kwargs: {"every_n_layers": every}}


def _checkpoints_every_n_layers() -> bool:
    import inspect

    from transformers import PreTrainedModel

    return "every_n_layers" in inspect.signature(PreTrainedModel._set_gradient_checkpointing).parameters


def recomputed_layers(model: Any) -> int:
    """How many of `model`'s repeated layers the trainer recomputes in the backward pass (the manifest
    records it: what the option asked for is not proof, as TRL's own default showed). 0 when none do."""
    from transformers.modeling_layers import GradientCheckpointingLayer  # transformers >= 4.56 has it

    layers = (m for m in model.modules() if isinstance(m, GradientCheckpointingLayer))
    return sum(1 for layer in layers if layer.gradient_checkpointing)


def activation_checkpointing(model: Any) -> bool:
    """Whether the trainer recomputes any of `model`'s activations in the backward pass."""
    for name in ("is_activation_checkpointing", "is_gradient_checkpointing"):  # transformers 5.x, 4.x
        if hasattr(model, name):
            return bool(getattr(model, name))
    return False


def native_bf16(gpu: bool) -> bool:
    """Whether bf16 arithmetic is fast here: on a GPU that has it, or a CPU with AVX512-BF16 or AMX
    (1.7x faster forward + backward than float32 for SmolLM2-135M on this project's 2-core EPYC)."""
    import torch

    if gpu:
        return torch.cuda.is_bf16_supported()
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private but long-lived torch.cpu helpers
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def training_bf16(requested: bool | None, gpu: bool) -> bool:
    """Whether to train in bf16: as `--bf16` / `--no-bf16` says, else where it is native. Asked for on a
    CPU that only emulates it, it is honoured with a warning: an AVX2 CPU computed a 1024³ bf16 product
    ~150x slower than in float32 (0.0009 against 0.14 TFLOP/s, docs/RESULTS.md), so a run that would
    take minutes takes hours."""
    native = native_bf16(gpu)
    if requested and not native:
        log.warning(
            "--bf16 on a %s without native bf16 arithmetic: it is emulated here, far slower than float32 "
            "(~150x for a CPU's matrix products); leave --bf16 out to train in float32",
            "GPU" if gpu else "CPU (no AVX512-BF16 or AMX)",
        )
    return native if requested is None else requested


def optimizer_name(fused: bool) -> str:
    """The trainer's AdamW: fused (one kernel over all weights; float32 state as the per-tensor one, so a
    checkpoint of either resumes with the other) or PyTorch's per-tensor loop. The fused kernel took the
    optimizer step of SmolLM2-135M from ~15 % of a CPU training step to ~3 % (benchmarks/train_mfu.py)."""
    return "adamw_torch_fused" if fused else "adamw_torch"


def progress_bar(description: str) -> Any:
    """The stage's one progress bar, as a trainer callback: optimizer steps with ETA and the latest
    loss (the trainer's own bar and the log lines it prints are off). It also stamps each logged loss
    with the seconds since this process began training (`seconds` in loss.jsonl): steady-state speed
    is then read off the log, past compilation and warm-up (benchmarks/train_mfu.py)."""
    import time

    from tqdm.auto import tqdm
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        bar: Any = None
        began = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.began = time.perf_counter()
            main = state.is_world_process_zero  # one bar for several processes
            self.bar = tqdm(
                total=state.max_steps, initial=state.global_step, desc=description, unit="step", disable=not main
            )

        def on_step_end(self, args, state, control, **kwargs):
            self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.log_history and "loss" in state.log_history[-1]:
                state.log_history[-1]["seconds"] = round(time.perf_counter() - self.began, 3)
            if self.bar is not None and logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{logs['loss']:.3f}", refresh=False)

        def on_train_end(self, args, state, control, **kwargs):
            self.bar.close()

    return Progress()


def write_loss_curve(log_history: Sequence[dict[str, Any]], out: Path, title: str) -> Path:
    """`loss.jsonl` (step, loss, learning rate, seconds into the training when logged) and `loss.png`
    from the trainer's log."""
    rows = [
        {"step": r["step"], "loss": r["loss"], "learning_rate": r.get("learning_rate")}
        | ({"seconds": r["seconds"]} if "seconds" in r else {})
        for r in log_history
        if "loss" in r
    ]
    (out / "loss.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot([r["step"] for r in rows], [r["loss"] for r in rows], marker="." if len(rows) < 50 else None)
    axis.set(xlabel="optimizer step", ylabel="training loss (completion tokens)", title=title)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out / "loss.png", dpi=120)
    plt.close(figure)
    return out / "loss.png"


class TrainingDiverged(SocraticError):
    """A training whose loss or weights stopped being finite numbers (one line: what to change)."""


def stop_when_not_finite() -> Any:
    """A trainer callback that ends training with one line at the first loss or weights that are not
    finite numbers (a learning rate of 1e308 made every weight NaN, and the run exited 0 with "last
    loss nan" and a student that writes nothing).

    The loss is checked as it is logged; the weights just before each checkpoint is saved and before
    the trainer hands the model back to be saved as the student. So nothing non-finite is ever
    written: the checkpoints already saved are the last finite ones, and they are kept."""
    import math

    import torch
    from transformers import TrainerCallback

    from socratic.weights import student_folder

    def weights_finite(model: Any) -> bool:
        with torch.no_grad():
            return all(bool(torch.isfinite(p).all()) for p in model.parameters())

    def diverged(args: Any, state: Any, what: str) -> TrainingDiverged:
        kept = student_folder.latest_checkpoint(Path(args.output_dir).parent)
        step = kept.name.rsplit("-", 1)[-1] if kept else None
        saved = f", and {kept} (step {step}) is the last checkpoint, kept" if kept else " (no checkpoint before it)"
        return TrainingDiverged(
            f"training diverged at step {state.global_step}: {what}; nothing non-finite was saved{saved}: lower "
            f"--learning-rate (now {args.learning_rate:g}) and train again into a fresh --out"
        )

    class StopWhenNotFinite(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            loss = (logs or {}).get("loss")
            if isinstance(loss, float) and not math.isfinite(loss):
                raise diverged(args, state, f"the loss is {loss}")

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if control.should_save and model is not None and not weights_finite(model):
                raise diverged(args, state, "the weights are no longer finite numbers")

        def on_train_end(self, args, state, control, model=None, **kwargs):
            if model is not None and not weights_finite(model):
                raise diverged(args, state, "the weights are no longer finite numbers")

    return StopWhenNotFinite()


def no_checkpoint_at_the_end() -> Any:
    """A trainer callback that cancels the checkpoint the trainer saves when training ends
    (`--no-final-checkpoint`): the weights, and AdamW's two moments, 1.6 GB and ~3 s to write for
    SmolLM2-135M, needed only to train the finished student further. Periodic checkpoints are kept."""
    from transformers import TrainerCallback

    class NoCheckpointAtTheEnd(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps:  # after the trainer's own flow callback asked for one
                control.should_save = False

    return NoCheckpointAtTheEnd()


def release_memory_each_step() -> Any:
    """A trainer callback that hands the memory an optimizer step freed back to the system before the
    next one (`core.machine.release_freed_memory`). Without it the allocator kept each step's activations
    resident in blocks the next step could not reuse: `socratic train` on SmolLM2-135M (rows of 1,024
    tokens, 1 row a micro-batch) held 3.7 GB after three steps instead of 2.4, peaking at 4.2 GB
    instead of 4.0; with 4 rows a micro-batch 5.9 instead of 5.1 GB, at the same speed
    (docs/RESULTS.md, "The demo in less memory"). Once a step, not after each of its passes: the pages
    handed back are faulted in again by the next pass, and with a CPU's one row a pass releasing after
    every pass made training 1.05-1.09x as long for 0.05-0.18 GiB less at the peak (docs/RESULTS.md, issue 32,
    "A step's rows one pass at a time")."""
    from transformers import TrainerCallback

    from socratic.core.machine import release_freed_memory

    class ReleaseMemory(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            release_freed_memory(young_garbage_only=True)

    return ReleaseMemory()
