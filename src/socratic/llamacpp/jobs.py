"""What a front end hands `LlamaBatch` (`llamacpp.batch`): a `Job` (prompt token ids, the `DecodeState` that
takes the chosen tokens and says when to stop, how a token is chosen), and the two sizes the batch
reasons in: a sequence's room in llama.cpp's KV cache and the prefix two prompts share."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from socratic.llamacpp.lookup import PromptLookup

MIN_ROOM = 256  # llama.cpp rounds a sequence's room up to a multiple of this


def room_for(positions: int) -> int:
    """The room llama.cpp gives a sequence asked for `positions`: the next multiple of 256."""
    return -(-positions // MIN_ROOM) * MIN_ROOM


def shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens `a` and `b` have in common."""
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


class DecodeState(Protocol):
    """What a front end keeps per prompt while its tokens arrive (`engines.base.Decoding` is one)."""

    tokens: list[int]  # chosen so far
    forced: deque[int]  # tokens that come next whatever the logits say (the calculator's value)
    finish: str | None  # set once the completion is complete
    max_new_tokens: int

    def add(self, token: int) -> None: ...

    def result(self) -> Any: ...


@dataclass
class Job:
    """A submitted prompt: its token ids, its decoding state, how its tokens are chosen, and the
    drafts fed after its last token. `choose(logits, i)` gets the next-token logits and their row
    in llama.cpp's last batch (for llama.cpp's own samplers). Only `greedy` jobs check drafts: a
    sampled token would have to be drawn against the draft's probability."""

    ids: list[int]
    state: DecodeState
    choose: Callable[[Any, int], int]
    greedy: bool
    drafts: list[int] = field(default_factory=list)
    lookup: PromptLookup | None = None
