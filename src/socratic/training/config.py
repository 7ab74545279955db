"""`TrainConfig`: every option of `socratic train` (its flags, its config-file section), with the defaults
the recipe in `train.py` explains; and the threads a training process takes when none are given."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from socratic.core.errors import SocraticError
from socratic.core.machine import usable_cores
from socratic.tasks.options import DataOptions
from socratic.text.methods import TRAINABLE


@dataclass(frozen=True)
class TrainConfig:
    method: str = field(
        default="unified",
        metadata={
            "help": "answer, cot, unified, iterative (its two students, into <out>/qg and <out>/qa), or qg / qa alone",
            "choices": TRAINABLE,
            "aliases": ("--mode",),
        },
    )
    chains: str = field(default="runs/chains.jsonl", metadata={"help": "chains file from `socratic annotate`"})
    model: str = field(
        default="smollm2-135m",
        metadata={
            "help": "base model: a name from `socratic models list`, a Hugging Face folder, or a hub id "
            "(gpt2-large, Qwen/Qwen2.5-0.5B, org/name@revision; from the hub cache, downloaded if online)"
        },
    )
    out: str = field(default="runs/student", metadata={"help": "checkpoint folder to write"})
    data: DataOptions = field(default_factory=DataOptions)
    epochs: float = field(default=3.0, metadata={"help": "passes over the training examples", "above": 0})
    learning_rate: float | None = field(
        default=None,
        metadata={"help": "peak learning rate (default: 5e-5 full fine-tuning, 2e-4 LoRA)", "above": 0},
    )
    batch_size: int = field(default=4, metadata={"help": "packed rows per optimizer step and device", "min": 1})
    grad_accum: int = field(default=1, metadata={"help": "gradient accumulation steps", "min": 1})
    micro_batch: int | None = field(
        default=None,
        metadata={
            "help": "packed rows one forward and backward pass computes at once; an optimizer step still sums "
            "--batch-size x --grad-accum rows, with the same loss (default: one row on a CPU, where it trained "
            "1.17-1.18x the tokens/s of 4 rows at once, docs/RESULTS.md; the whole --batch-size on a GPU, as before)",
            "min": 1,
        },
    )
    max_length: int = field(
        default=1024, metadata={"help": "tokens per packed row (longer examples are cut)", "min": 8}
    )
    packing: bool = field(default=True, metadata={"help": "pack examples into rows without padding"})
    lora_r: int | None = field(
        default=None, metadata={"help": "train LoRA adapters of this rank (default: full fine-tuning)", "min": 1}
    )
    lora_alpha: int | None = field(default=None, metadata={"help": "LoRA alpha (default: 2 x rank)", "min": 1})
    warmup_ratio: float = field(
        default=0.03, metadata={"help": "share of steps spent warming up the learning rate", "min": 0}
    )
    lr_schedule: str = field(
        default="linear",
        metadata={
            "help": "the learning rate after the warm-up: linear (down to 0 at the last step), cosine (down to 0, "
            "slower at first and at the end), constant (the peak throughout)",
            "choices": ("linear", "cosine", "constant"),
        },
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay", "min": 0})
    decision_weight: float = field(
        default=1.0,
        metadata={
            "help": "loss weight of the first token of every trained line: for QG the choice between asking "
            "another subquestion and the end marker, one token of ~15 a line (1 = every token alike)",
            "above": 0,
        },
    )
    repeat_unlikelihood: float = field(
        default=0.0,
        metadata={
            "help": "QG only: weight of an unlikelihood term against asking again what the chain already asked: "
            "where each trained line parts from an earlier line of its chain, -log(1 - p) of the earlier "
            "line's token (0 = off; the other roles train without it)",
            "min": 0,
        },
    )
    bf16: bool | None = field(
        default=None,
        metadata={
            "help": "bf16 mixed precision (default: on for GPUs with bf16 and for CPUs that compute bf16 "
            "natively, AVX512-BF16 or AMX; weights stay float32 on a CPU)"
        },
    )
    packed_attention: bool = field(
        default=True,
        metadata={
            "help": "with packing, each example attends to itself alone (exact; 2-16x less attention work than "
            "transformers' block mask over the whole flattened batch)"
        },
    )
    fused_optimizer: bool = field(
        default=True,
        metadata={"help": "PyTorch's fused AdamW kernel (one pass over all weights instead of one op per tensor)"},
    )
    trl_loss: bool | None = field(
        default=None,
        metadata={
            "help": "TRL's own loss, which also logs entropy and token accuracy (default: on CUDA, where TRL "
            "computes it with Triton kernels in chunks that never hold all the logits; elsewhere socratic's "
            "loss over the logits of the trained positions alone, as TRL without Triton scores every "
            "position; not with --decision-weight)"
        },
    )
    gradient_checkpointing: bool = field(
        default=False,
        metadata={
            "help": "recompute each layer's activations in the backward pass instead of keeping them: less "
            "memory, more compute (SmolLM2-135M, rows of 512: 0.5 GB less, steps 1.15x as long; docs/RESULTS.md)"
        },
    )
    recompute_every: int = field(
        default=1,
        metadata={
            "help": "with --gradient-checkpointing, recompute only every Nth layer (2: the 1st, 3rd, 5th ...) and "
            "keep the others' activations: memory and speed between all layers recomputed (1) and none "
            "(transformers' every_n_layers)",
            "min": 1,
        },
    )
    torch_compile: bool = field(
        default=False,
        metadata={
            "help": "compile the model with torch.compile, once: every step is padded to --batch-size x "
            "--max-length tokens (worth it only for long runs of full rows; measured in docs/RESULTS.md)"
        },
    )
    threads: int | None = field(default=None, metadata={"help": "CPU threads (default: its usable cores)", "min": 1})
    save_steps: int = field(default=100, metadata={"help": "save a resumable checkpoint every N steps", "min": 1})
    final_checkpoint: bool = field(
        default=True,
        metadata={
            "help": "also save a resumable checkpoint when training ends, so that asking for more epochs or steps "
            "continues from it (with its optimizer state it is 3x the weights on disk: --no-final-checkpoint saves "
            "that and the seconds it takes to write; more training then starts from the last periodic checkpoint, "
            "or from the base model)"
        },
    )
    logging_steps: int = field(default=5, metadata={"help": "record the loss every N steps", "min": 1})
    max_steps: int = field(
        default=-1, metadata={"help": "stop after N optimizer steps (default -1: by --epochs)", "min": -1}
    )
    seed: int = field(default=0, metadata={"help": "random seed (data order, LoRA init)"})
    report_to: str = field(
        default="none",
        metadata={
            "help": "also log loss and learning rate to tensorboard (event files under <out>/checkpoints/runs; "
            "pip install 'socratic[track]') or wandb; loss.jsonl and loss.png are written either way",
            "choices": ("none", "tensorboard", "wandb"),
        },
    )

    def __post_init__(self) -> None:
        if self.max_steps == 0:
            raise SocraticError("--max-steps: must be at least 1 (or -1 to train by --epochs)")
        if self.trl_loss and (self.decision_weight != 1 or self.repeat_unlikelihood):
            raise SocraticError(
                "--trl-loss: TRL's loss has no decision weight or repeat unlikelihood; leave out one of the two"
            )
        if self.micro_batch and self.batch_size % self.micro_batch:
            raise SocraticError(f"--micro-batch: must divide --batch-size ({self.batch_size}), not {self.micro_batch}")
        if self.warmup_ratio >= 1:
            raise SocraticError(f"--warmup-ratio: must be below 1, not {self.warmup_ratio}")

    def rows_per_pass(self, gpu: bool) -> int:
        """Packed rows one forward and backward pass computes: --micro-batch, else one on a CPU (4 passes
        of one row trained 1.17-1.18x the tokens/s of one pass of 4, with the same losses: docs/RESULTS.md,
        issue 32) and the whole batch on a GPU, as before (not measured on one)."""
        if self.micro_batch:
            return self.micro_batch
        return self.batch_size if gpu else 1

    @property
    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 2e-4 if self.lora_r else 5e-5


def default_threads() -> int:
    """The cores this process may use, shared among the processes on this machine when `accelerate launch`
    starts several."""
    return max(1, usable_cores() // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
