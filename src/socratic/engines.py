"""Generation engines for `solve`: prompts in, completions out, each stopped where its layout ends.

    engine = HFEngine("runs/u", batch_size=32)
    engine.complete(["Problem: ...\\n"], until="answer", max_new_tokens=256)

Two engines, the same contract (greedy decoding gives the same completions up to float rounding):

- `hf` (`HFEngine`): a transformers model and our own decode loop instead of `generate`. Prompts are
  sorted by length and batched (so there is little left padding); each batch is prefilled once, then
  decoded one token per step with the KV cache, and a row leaves the batch, cache included, as soon
  as its completion is complete, so the batch never computes tokens that would be thrown away.
  Runs anywhere transformers does; the engine of choice on a GPU.
- `llamacpp` (`LlamaCppEngine`): the student exported to GGUF and decoded by llama.cpp one prompt at
  a time. llama.cpp keeps the KV cache of the previous prompt and only evaluates the new suffix, so
  the iterative loop, run problem by problem, never re-reads its history. Fast on CPUs.

Both can run the calculator while decoding: when a completion ends in an open annotation `<<expr=`,
the value computed by `socratic.calculator` and `>>` are written as forced tokens, in place of the
model's own arithmetic (which is what small students get wrong most).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from socratic import formats
from socratic.calculator import complete_open_annotation

ENGINES = ("hf", "llamacpp")


@dataclass(frozen=True)
class Sampling:
    """Greedy decoding when `temperature` is 0; otherwise sampling with this temperature and seed."""

    temperature: float = 0.0
    seed: int = 0


GREEDY = Sampling()


@dataclass(frozen=True)
class Completion:
    text: str  # the completion, cut where its layout ends
    tokens: int  # tokens generated (forced calculator tokens included)
    finish: str  # "stop": layout complete, "eos": end-of-sequence token, "length": ran out of tokens
    calculator: int = 0  # annotations whose value the calculator wrote


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
        """One completion per prompt, in order; `until` is "line" or "answer" (see `formats.completion_end`)."""
        ...


class _Decoding:
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


def _eos_ids(tokenizer, config_eos: int | list[int] | None) -> set[int]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    ids |= set(config_eos if isinstance(config_eos, list) else [config_eos] if config_eos is not None else [])
    return ids


class HFEngine:
    """Batched decoding with a transformers model; see the module docstring."""

    def __init__(self, model: str | Path, batch_size: int = 32, dtype: str = "float32", threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(threads or os.cpu_count() or 1)
        self.torch = torch
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype)).to(device).eval()
        self.device = device
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.eos = _eos_ids(self.tokenizer, self.model.generation_config.eos_token_id)

    def complete(
        self,
        prompts: Sequence[str],
        until: str,
        max_new_tokens: int,
        sampling: Sampling = GREEDY,
        calculator: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> list[Completion]:
        # Tokenised exactly as the trainer tokenised prompts (the tokenizer's defaults).
        encoded = [self.tokenizer(p)["input_ids"] for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))  # similar lengths share a batch
        results: list[Completion | None] = [None] * len(prompts)
        generator = self.torch.Generator(device=self.device).manual_seed(sampling.seed)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            states = [_Decoding(self.tokenizer, until, max_new_tokens, calculator, self.eos, prompts[i]) for i in batch]
            self._decode([encoded[i] for i in batch], states, sampling, generator)
            for i, state in zip(batch, states, strict=True):
                results[i] = state.result()
            if progress:
                progress(len(batch))
        return results  # type: ignore[return-value]

    def _decode(self, rows: list[list[int]], states: list[_Decoding], sampling: Sampling, generator) -> None:
        torch = self.torch
        from transformers import DynamicCache

        width = max(len(r) for r in rows)
        ids = torch.tensor([[self.pad_id] * (width - len(r)) + r for r in rows], device=self.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        active = list(range(len(rows)))  # which state each batch row belongs to
        with torch.inference_mode():
            logits = self._forward(ids, mask, positions, cache)
            next_positions = positions[:, -1:] + 1
            while True:
                chosen = self._choose(logits, sampling, generator).tolist()
                fed = []
                for row, state_index in enumerate(active):
                    state = states[state_index]
                    token = state.forced.popleft() if state.forced else chosen[row]
                    state.add(token)
                    fed.append(token)
                keep = [row for row, s in enumerate(active) if states[s].finish is None]
                if not keep:
                    return
                if len(keep) < len(active):  # finished rows leave the batch and the cache
                    index = torch.tensor(keep, device=self.device)
                    cache.batch_select_indices(index)
                    mask, next_positions = mask[index], next_positions[index]
                    active = [active[row] for row in keep]
                    fed = [fed[row] for row in keep]
                mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
                step_ids = torch.tensor(fed, device=self.device).unsqueeze(1)
                logits = self._forward(step_ids, mask, next_positions, cache)
                next_positions = next_positions + 1

    def _forward(self, ids, mask, positions, cache):
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        return out.logits[:, -1, :].float()

    def _choose(self, logits, sampling: Sampling, generator):
        if sampling.temperature <= 0:
            return logits.argmax(-1)
        probs = self.torch.softmax(logits / sampling.temperature, dim=-1)
        return self.torch.multinomial(probs, 1, generator=generator).squeeze(1)


class LlamaCppEngine:
    """One prompt at a time through llama.cpp, reusing the KV cache of the shared prefix; see the module
    docstring. `model` is a .gguf file (`export_gguf` writes one for a trained student); `tokenizer` is
    the student's folder, so that prompts become exactly the token ids the student was trained on."""

    def __init__(self, model: str | Path, tokenizer: str | Path, threads: int | None = None, context: int = 2048):
        from llama_cpp import Llama
        from transformers import AutoTokenizer

        threads = threads or os.cpu_count() or 1
        self.llm = Llama(
            model_path=str(model), n_ctx=context, n_threads=threads, n_threads_batch=threads, verbose=False
        )
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        self.eos = _eos_ids(self.tokenizer, self.llm.token_eos())

    def complete(
        self,
        prompts: Sequence[str],
        until: str,
        max_new_tokens: int,
        sampling: Sampling = GREEDY,
        calculator: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> list[Completion]:
        results = []
        for prompt in prompts:
            state = _Decoding(self.tokenizer, until, max_new_tokens, calculator, self.eos, prompt)
            self._decode(self.tokenizer(prompt)["input_ids"], state, sampling)
            results.append(state.result())
            if progress:
                progress(1)
        return results

    def _decode(self, prompt: list[int], state: _Decoding, sampling: Sampling) -> None:
        self.llm.set_seed(sampling.seed)
        while state.finish is None:
            # generate() keeps the KV cache of the longest prefix shared with the previous call, so
            # restarting after forced calculator tokens only evaluates those tokens.
            stream = self.llm.generate(
                prompt + state.tokens, temp=sampling.temperature, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0
            )
            try:
                for token in stream:
                    state.add(token)
                    if state.finish is not None or state.forced:
                        break
            finally:
                stream.close()
            while state.forced and state.finish is None:
                state.add(state.forced.popleft())
            state.forced.clear()
