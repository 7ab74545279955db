"""Attention over packed rows, one example at a time.

Packing puts several examples in one row; TRL then flattens a batch of rows into one sequence whose
position ids restart at 0 where each example starts (padding-free). Transformers' SDPA path turns that
into a block-diagonal mask over the whole sequence, and with a mask the attention kernels cannot skip
the masked blocks: a batch of 4 rows of 1,024 tokens costs a 4,096 x 4,096 attention in every layer,
16 times the work of its rows and far more than its examples (measured in benchmarks/train_mfu.py).
Here each example attends to itself alone, causally, with SDPA's `is_causal` kernel (which skips the
upper triangle) and grouped-query attention without copying the key/value heads: the same values as
the mask (the packed-logits check in `trainer.packed_logits_match` proves it on each model), the
least work.

It is for training on padding-free packed rows only: the implementation is registered under its own
name, which transformers' mask builders do not know, so the model passes no attention mask, and a
padded batch would be read as unpadded. `training_attention` switches a model to it for the length of
a training run and back to SDPA before the model is saved or used to generate.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

NAME = "socratic_packed"


def packed_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    position_ids: Any = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """Transformers' attention-function contract: query (batch, heads, tokens, dim), key and value
    (batch, kv heads, tokens, dim) in; (batch, tokens, heads, dim) out, and no attention weights."""
    import torch
    import torch.nn.functional as F

    rows = []
    for row in range(query.shape[0]):
        starts = example_starts(position_ids, row, query.shape[2])
        pieces = [
            F.scaled_dot_product_attention(
                query[row : row + 1, :, a:b],
                key[row : row + 1, :, a:b],
                value[row : row + 1, :, a:b],
                dropout_p=dropout,
                is_causal=True,
                scale=scaling,
                enable_gqa=query.shape[1] != key.shape[1],
            )
            for a, b in itertools.pairwise(starts)
        ]
        rows.append(pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=2))
    out = rows[0] if len(rows) == 1 else torch.cat(rows, dim=0)
    return out.transpose(1, 2).contiguous(), None


def example_starts(position_ids: Any, row: int, length: int) -> list[int]:
    """Where each packed example of `row` starts (its position id is 0), and the row's end.

    Padding at the end of a row (position ids 0, 0, ..., as TRL pads a padding-free batch to a fixed
    length for `--torch-compile`) is one piece, not one per token: its labels are ignored, and it comes
    after every real token, which causal attention never lets see it.
    """
    if position_ids is None:
        return [0, length]
    ids = position_ids[min(row, position_ids.shape[0] - 1)]
    real = ids.nonzero()
    padding_from = int(real[-1]) + 1 if len(real) else min(1, length)
    starts = (ids[:padding_from] == 0).nonzero().flatten().tolist()
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    if padding_from < length and padding_from not in starts:
        starts.append(padding_from)
    return [*starts, length]


def register() -> str:
    """Make the implementation known to transformers (idempotent); returns its name."""
    import torch
    from transformers import AttentionInterface

    # Under --torch-compile the attention runs eagerly between compiled pieces: its split points are data
    # (where position ids restart), which would otherwise make every batch a new graph to compile.
    AttentionInterface.register(NAME, torch.compiler.disable(packed_attention))
    return NAME


@contextlib.contextmanager
def training_attention(model: Any, enabled: bool) -> Iterator[None]:
    """`model` attends example by example inside the block, as it was after it (SDPA, for generation)."""
    if not enabled:
        yield
        return
    configs = [m.config for m in model.modules() if hasattr(m, "config") and hasattr(m.config, "_attn_implementation")]
    before = [c._attn_implementation for c in configs]
    name = register()
    for config in configs:
        config._attn_implementation = name
    try:
        yield
    finally:
        for config, implementation in zip(configs, before, strict=True):
            config._attn_implementation = implementation
