"""What every engine shares: the contract (`Engine`), its records, and the per-completion decoding
state that decides where a completion stops and writes the calculator's values."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from socratic.text import formats
from socratic.text.calculator import complete_open_annotation
from socratic.text.checked import tokenizable

log = logging.getLogger(__name__)

ENGINES = ("hf", "llamacpp", "vllm")


@dataclass(frozen=True)
class Sampling:
    """Greedy decoding when `temperature` is 0; otherwise sampling with this temperature and seed, from
    the smallest set of likeliest tokens whose probabilities reach `top_p` (nucleus sampling; 1: all)."""

    temperature: float = 0.0
    seed: int = 0
    top_p: float = 1.0


GREEDY = Sampling()


TOO_LONG = "too long"  # the finish of a prompt that, with its new tokens, does not fit the engine's context


@dataclass(frozen=True)
class Completion:
    text: str  # the completion, cut where its layout ends
    tokens: int  # tokens generated (forced calculator tokens included)
    # "stop": layout complete, "eos": end-of-sequence token, "length": ran out of tokens,
    # TOO_LONG: never decoded (empty text, no tokens), so that one long prompt does not stop a batch
    finish: str
    calculator: int = 0  # annotations whose value the calculator wrote


def encode(tokenizer, prompt: str) -> list[int]:
    """A prompt's token ids, as the trainer tokenised prompts (the tokenizer's defaults); text no
    tokenizer can read is a `SocraticError` naming why, before any prompt of the call is decoded (the
    tokenizers library's own `TypeError` said nothing a user could act on)."""
    return tokenizer(tokenizable(prompt, "a prompt"))["input_ids"]


def too_long() -> Completion:
    return Completion("", 0, TOO_LONG)


def fits(prompt_tokens: int, max_new_tokens: int, context: int | None, engine: str) -> bool:
    """Whether a prompt and its whole token budget fit `context` positions (None: no known limit);
    the first prompt that does not is reported once per engine kind and context.

    The budget counts in full, so a completion is either decoded as asked or not at all: how far
    a completion may run never depends on how long its prompt happened to be.
    """
    if context is None or prompt_tokens + max_new_tokens <= context:
        return True
    _report_too_long(engine, context, prompt_tokens, max_new_tokens)
    return False


_reported: set[tuple[str, int]] = set()  # (engine, context) already warned about: once, not per problem


def _report_too_long(engine: str, context: int, prompt_tokens: int, max_new_tokens: int) -> None:
    if (engine, context) in _reported:
        return
    _reported.add((engine, context))
    log.warning(
        "%s: a prompt of %d tokens with %d new ones does not fit %d positions; it and any other "
        "that does not fit are not decoded (finish 'too long')",
        engine,
        prompt_tokens,
        max_new_tokens,
        context,
    )


class Engine(Protocol):
    def complete(
        self,
        prompts: Sequence[str],
        until: str,
        max_new_tokens: int,
        sampling: Sampling = GREEDY,
        calculator: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> list[Completion]:
        """One completion per prompt, in order; `until` is "line" or "answer" (see `formats.completion_end`).
        A prompt that does not fit the engine's context gets `too_long()`; the others decode as usual."""
        ...


class Stepwise(Protocol):
    """Prompts submitted while others decode, advanced a step at a time (`LlamaCppEngine`, `Rounds`)."""

    @property
    def busy(self) -> bool: ...

    def submit(
        self, prompts: Sequence[str], until: str, max_new_tokens: int, sampling: Sampling, calculator: bool
    ) -> list[int]: ...

    def step(self) -> list[tuple[int, Completion]]: ...

    def release(self, tickets: Sequence[int]) -> None:
        """These finished completions will not be continued: whatever is kept for them can go."""
        ...

    def cancel(self, tickets: Sequence[int]) -> None:
        """These submitted completions are no longer wanted (a client went away): stop them, free their room."""
        ...


class Rounds:
    """`Stepwise` for an engine that completes whole batches: a step completes everything submitted
    since the last one, in one `complete` call per kind of request."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.queued: dict[tuple, list[tuple[int, str]]] = {}  # request kind -> (ticket, prompt)
        self.tickets = 0

    @property
    def busy(self) -> bool:
        return bool(self.queued)

    def submit(
        self, prompts: Sequence[str], until: str, max_new_tokens: int, sampling: Sampling, calculator: bool
    ) -> list[int]:
        tickets = list(range(self.tickets, self.tickets + len(prompts)))
        self.tickets += len(prompts)
        kind = (until, max_new_tokens, sampling, calculator)
        self.queued.setdefault(kind, []).extend(zip(tickets, prompts, strict=True))
        return tickets

    def step(self) -> list[tuple[int, Completion]]:
        queued, self.queued = self.queued, {}
        finished = []
        for (until, max_new_tokens, sampling, calculator), requests in queued.items():
            tickets, prompts = zip(*requests, strict=True)
            completions = self.engine.complete(prompts, until, max_new_tokens, sampling, calculator)
            finished += zip(tickets, completions, strict=True)
        return finished

    def cancel(self, tickets: Sequence[int]) -> None:
        gone = set(tickets)
        for kind, requests in list(self.queued.items()):
            self.queued[kind] = [(ticket, prompt) for ticket, prompt in requests if ticket not in gone]
            if not self.queued[kind]:
                del self.queued[kind]

    def release(self, tickets: Sequence[int]) -> None:
        # `complete` gives no tickets to free by. A llama.cpp engine run in rounds evicts the
        # sequences parked longest ago, and rounds re-park every active problem each time.
        pass


def stepwise(engine: Engine, continuous: bool = False) -> Stepwise:
    """`Rounds` of the engine, or with `continuous` the engine itself where it takes prompts while it
    decodes others (llama.cpp)."""
    return engine if continuous and hasattr(engine, "step") else Rounds(engine)  # type: ignore[return-value]


class Decoding:
    """The state of one completion while its tokens arrive: text, stop check, calculator."""

    def __init__(self, tokenizer, until: str, max_new_tokens: int, calculator: bool, eos: set[int], prompt: str = ""):
        self.tokenizer, self.until, self.max_new_tokens = tokenizer, until, max_new_tokens
        self.line_start = prompt.rsplit("\n", 1)[-1]  # an annotation may open in the prompt's last line
        self.use_calculator, self.eos = calculator, eos
        self.tokens: list[int] = []
        self.forced: deque[int] = deque()
        self.text = ""
        self.finish: str | None = None
        self.calculator_writes = 0

    def add(self, token: int) -> None:
        self.tokens.append(token)
        if token in self.eos:
            self.finish = "eos"
            return
        self.text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        if formats.completion_end(self.text, self.until) is not None:
            self.finish = "stop"
        elif len(self.tokens) >= self.max_new_tokens:
            self.finish = "length"
        elif self.use_calculator and not self.forced and self.text.endswith("="):
            value = complete_open_annotation(self.line_start + self.text)
            if value is not None:
                self.forced.extend(self.tokenizer.encode(f"{value}>>", add_special_tokens=False))
                self.calculator_writes += 1

    def result(self) -> Completion:
        end = formats.completion_end(self.text, self.until)
        text = self.text[:end] if end is not None else self.text
        return Completion(text, len(self.tokens), self.finish or "length", self.calculator_writes)


def eos_ids(tokenizer, config_eos: int | list[int] | None) -> set[int]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    ids |= set(config_eos if isinstance(config_eos, list) else [config_eos] if config_eos is not None else [])
    return ids
