"""Bounds on a training's sizes that follow from the model and the machine, checked before any work.

    socratic train --max-length 1000000000 ...   # -> error: max_length 1,000,000,000 is more than the 8,192 ...

`max_length` (tokens per packed row) was accepted up to any number: a 4-chain, 1-step run at
1,000,000,000 peaked at 17.8 GB (2.9 GB at the default) and trained rows past the positions the model
has. Two bounds, read from the base model's config.json and file sizes before its weights load:

- a row cannot be longer than the model's positions (`max_position_embeddings`): past them learned
  position embeddings fail and rotary ones were never trained;
- on a CPU, one optimizer step must fit the machine's memory. The estimate is a floor, so that no
  training that could run is refused: the weights with their gradients and two AdamW moments (4x the
  weights' bytes), and the logits of one forward and backward pass with their gradients in float32
  (rows a pass x max_length x vocabulary x 8 bytes; `--micro-batch`, one row by default on a CPU);
  activations come on top.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from socratic.core.errors import SocraticError


def check_lengths(config: Any) -> None:
    """Refuse a `TrainConfig` whose max_length the base model or this machine cannot hold (one line)."""
    from transformers import AutoConfig

    from socratic.weights import models

    base = models.resolve(config.model)
    model_config = AutoConfig.from_pretrained(base)
    positions = getattr(model_config, "max_position_embeddings", None)
    if isinstance(positions, int) and config.max_length > positions:
        raise SocraticError(
            f"max_length {config.max_length:,} is more than the {positions:,} positions of {config.model}: "
            f"give at most {positions:,}"
        )
    memory = physical_memory()
    if memory is None or _has_gpu():
        return
    rows = config.rows_per_pass(gpu=False)
    need = step_memory_floor(rows, config.max_length, model_config.vocab_size, weights_bytes(base))
    if need > memory:
        raise SocraticError(
            f"max_length {config.max_length:,} with {rows} rows a pass (--micro-batch): one training step needs "
            f"at least {need / 2**30:.1f} GiB, and this machine has {memory / 2**30:.1f} GiB: lower max_length "
            "or --micro-batch (the batch stays the same)"
        )


def step_memory_floor(rows: int, max_length: int, vocabulary: int, weights: int) -> int:
    """Bytes one optimizer step needs at least, with `rows` packed rows a pass; see the module docstring."""
    return 4 * weights + rows * max_length * vocabulary * 8


def weights_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in Path(folder).glob("*.safetensors"))


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        return None


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()
