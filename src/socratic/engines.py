"""Generation engines for `solve`: prompts in, completions out, each stopped where its layout ends.

    engine = HFEngine("runs/u", batch_size=32)
    engine.complete(["Problem: ...\\n"], until="answer", max_new_tokens=256)

Two engines, the same contract (greedy decoding gives the same completions up to float rounding):

- `hf` (`HFEngine`): a transformers model and our own decode loop instead of `generate`. Prompts are
  sorted by length and batched (so there is little left padding); each batch is prefilled once, then
  decoded one token per step with the KV cache, and a row leaves the batch, cache included, as soon
  as its completion is complete, so the batch never computes tokens that would be thrown away.
  Runs anywhere transformers does; the engine of choice on a GPU.
- `llamacpp` (`LlamaCppEngine`): the student exported to a float32 GGUF and decoded by llama.cpp
  with continuous batching: up to `batch_size` sequences decode together, each in its own KV-cache
  stream, and a finished sequence's slot takes the next prompt at once. No torch in the decode
  loop; one decoding step of 32 sequences of SmolLM2-135M takes ~0.09 s here against ~0.22 s for
  transformers' `generate`.

- `vllm` (`VLLMEngine`, extra `socratic[vllm]`): the student folder served by vLLM in process, for
  GPUs. Written against vLLM's offline `LLM.generate` API but not run here (no GPU, no vLLM).

All can run the calculator while decoding: when a completion ends in an open annotation `<<expr=`,
the value computed by `socratic.calculator` and `>>` are written as forced tokens, in place of the
model's own arithmetic (which is what small students get wrong most).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from socratic import formats
from socratic.calculator import complete_open_annotation

ENGINES = ("hf", "llamacpp", "vllm")


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


def _shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


@functools.cache
def _silent_llama_log():
    """A llama.cpp log callback that drops everything (kept alive for the process: llama.cpp holds it)."""
    import llama_cpp

    return llama_cpp.llama_log_callback(lambda level, text, user_data: None)


class LlamaCppEngine:
    """Continuous batching with llama.cpp; see the module docstring. `model` is a .gguf file
    (`models.export_gguf` writes one for a trained student); `tokenizer` is the student's folder, so
    that prompts become exactly the token ids the student was trained on.

    Up to `batch_size` sequences decode together, each in its own KV-cache sequence. Each llama.cpp
    call carries one new token for every running sequence plus the whole prompts of sequences that
    start in freed slots, so the batch stays full until the prompts run out.

    Finished sequences keep their KV cells ("parked") while no waiting prompt needs the slot, and a
    later prompt that starts with the same tokens continues from them: only its new tokens are
    evaluated. The iterative loop asks QG and QA about the same problems again and again with a
    history that only grows, so each call reads just the line the other model wrote
    (`keep_cache=False` recomputes every prompt).
    """

    def __init__(
        self,
        model: str | Path,
        tokenizer: str | Path,
        threads: int | None = None,
        batch_size: int = 32,
        context_per_sequence: int = 1024,
        keep_cache: bool = True,
    ):
        import llama_cpp as lc
        from transformers import AutoTokenizer

        self.lc = lc
        self.batch_size, self.context_per_sequence, self.keep_cache = batch_size, context_per_sequence, keep_cache
        self.spare = batch_size  # one sequence more than the batch: scratch space to swap two sequences
        self.parked: dict[int, list[int]] = {}  # finished sequence -> the tokens its KV cells hold
        self.tokens_evaluated = 0  # prompt and generated tokens llama.cpp has computed, for benchmarks
        threads = threads or os.cpu_count() or 1
        lc.llama_log_set(_silent_llama_log(), ctypes.c_void_p(0))  # llama.cpp logs every graph it builds
        lc.llama_backend_init()
        self.model = lc.llama_model_load_from_file(str(model).encode(), lc.llama_model_default_params())
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {model}")
        params = lc.llama_context_default_params()
        params.n_ctx = (batch_size + 1) * context_per_sequence
        params.n_batch = params.n_ubatch = self.max_tokens_per_call = 2048
        params.n_seq_max = batch_size + 1
        params.n_threads = params.n_threads_batch = threads
        # One KV stream per sequence: a unified cache would make every token attend over (and mask)
        # the cells of all sequences, which made batched decoding slower than one at a time.
        params.kv_unified = False
        params.flash_attn_type = 1  # enabled; llama.cpp's CPU flash attention skips the empty cells
        self.ctx = lc.llama_init_from_model(self.model, params)
        self.batch = lc.llama_batch_init(self.max_tokens_per_call, 0, 1)
        self.memory = lc.llama_get_memory(self.ctx)
        self.n_vocab = lc.llama_vocab_n_tokens(lc.llama_model_get_vocab(self.model))
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        self.eos = _eos_ids(self.tokenizer, lc.llama_vocab_eos(lc.llama_model_get_vocab(self.model)))

    def close(self) -> None:
        """Free llama.cpp's memory (also done when the engine is garbage-collected)."""
        if getattr(self, "ctx", None):
            self.lc.llama_batch_free(self.batch)
            self.lc.llama_free(self.ctx)
            self.lc.llama_model_free(self.model)
            self.ctx = None

    def __del__(self):
        with contextlib.suppress(Exception):  # at interpreter shutdown llama_cpp may already be gone
            self.close()

    def complete(
        self,
        prompts: Sequence[str],
        until: str,
        max_new_tokens: int,
        sampling: Sampling = GREEDY,
        calculator: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> list[Completion]:
        import numpy as np

        rng = np.random.default_rng(sampling.seed)
        encoded = [self.tokenizer(p)["input_ids"] for p in prompts]
        too_long = [i for i, ids in enumerate(encoded) if len(ids) + max_new_tokens > self.context_per_sequence]
        if too_long:
            raise ValueError(f"prompt {too_long[0]} needs more than {self.context_per_sequence} tokens of context")
        states = [_Decoding(self.tokenizer, until, max_new_tokens, calculator, self.eos, p) for p in prompts]
        reserved = self._continue_parked(encoded)  # prompt -> (its parked sequence, tokens already there)
        fresh = sorted(set(range(len(prompts))) - set(reserved), key=lambda i: -len(encoded[i]))
        waiting = deque(sorted(reserved) + fresh)  # continuations first: their slots are taken anyway
        free = [seq for seq in range(self.batch_size) if seq not in {s for s, _ in reserved.values()}]
        for seq in free:
            self._forget(seq)
        fresh_waiting = len(fresh)
        slots: dict[int, int] = {}  # running KV-cache sequence -> prompt index
        feed: list[tuple[int, int, int, bool]] = []  # (sequence, token, position, wants logits)
        while waiting or slots:
            while waiting:
                index = waiting[0]
                seq, start = reserved.get(index, (min(free) if free else None, 0))  # low ids first: llama.cpp
                ids = encoded[index]  # batches contiguous sequence ids in one pass, gaps split the batch
                if seq is None or len(feed) + len(ids) - start > self.max_tokens_per_call:
                    break
                waiting.popleft()
                if index not in reserved:
                    free.remove(seq)
                    fresh_waiting -= 1
                self.parked.pop(seq, None)
                slots[seq] = index
                feed += [(seq, token, pos, pos == len(ids) - 1) for pos, token in enumerate(ids[start:], start)]
            if not waiting:
                feed = self._close_gaps(feed, slots, free)
            logits = self._decode(feed)
            feed = []
            for seq, row in logits.items():
                index = slots[seq]
                state = states[index]
                token = state.forced.popleft() if state.forced else self._choose(row, sampling, rng)
                state.add(token)
                if state.finish is None:
                    feed.append((seq, token, len(encoded[index]) + len(state.tokens) - 1, True))
                    continue
                del slots[seq]
                if self.keep_cache and fresh_waiting <= len(free):
                    self.parked[seq] = encoded[index] + state.tokens[:-1]  # the last token was never fed
                else:
                    self._forget(seq)
                    free.append(seq)
                if progress:
                    progress(1)
        return [state.result() for state in states]

    def _continue_parked(self, encoded: list[list[int]]) -> dict[int, tuple[int, int]]:
        """Pair prompts with the parked sequence sharing their longest prefix, and cut each such
        sequence back to that prefix: prompt index -> (sequence, tokens kept)."""
        if not self.keep_cache:
            self.lc.llama_memory_clear(self.memory, True)
            self.parked.clear()
            return {}
        key = 32  # prompts are matched on their first tokens (the problem), then on the longest prefix
        by_start: dict[tuple[int, ...], list[int]] = {}
        for seq, tokens in self.parked.items():
            by_start.setdefault(tuple(tokens[:key]), []).append(seq)
        reserved = {}
        for index, ids in enumerate(encoded):
            candidates = by_start.get(tuple(ids[:key]))
            if not candidates:
                continue
            shared = {seq: _shared_prefix(self.parked[seq], ids) for seq in candidates}
            seq = max(candidates, key=shared.__getitem__)
            kept = min(shared[seq], len(ids) - 1)  # the last prompt token is fed again for its logits
            if kept == 0 or not self.lc.llama_memory_seq_rm(self.memory, seq, kept, -1):
                continue  # (a cache that cannot drop its tail, e.g. a recurrent one, starts afresh)
            candidates.remove(seq)
            self.parked[seq] = self.parked[seq][:kept]
            reserved[index] = (seq, kept)
        return reserved

    def _forget(self, seq: int) -> None:
        self.lc.llama_memory_seq_rm(self.memory, seq, -1, -1)
        self.parked.pop(seq, None)

    def _close_gaps(self, feed: list[tuple[int, int, int, bool]], slots: dict[int, int], free: list[int]) -> list:
        """Move the highest running sequences into lower slots that are free or parked, so the running
        ids stay contiguous.

        llama.cpp splits a batch at every gap in the sequence ids (16 sequences with gaps decode 5x
        slower than 16 contiguous ones here); with prompts waiting, new ones fill the gaps, so this
        only runs for the tail of a call. Moving a sequence copies its KV cells (milliseconds); a
        parked one swaps places with the running one through the spare sequence.
        """
        moves = {}
        while slots:
            high = max(slots)
            idle = [seq for seq in range(high) if seq not in slots]
            if not idle:
                break
            low = idle[0]
            if low in self.parked:
                self._move(low, self.spare)
                self._move(high, low)
                self._move(self.spare, high)
                self.parked[high] = self.parked.pop(low)
            else:
                self._move(high, low)
                free.remove(low)
                free.append(high)
            slots[low] = slots.pop(high)
            moves[high] = low
        return [(moves.get(seq, seq), token, pos, wants) for seq, token, pos, wants in feed]

    def _move(self, source: int, target: int) -> None:
        self.lc.llama_memory_seq_cp(self.memory, source, target, -1, -1)
        self.lc.llama_memory_seq_rm(self.memory, source, -1, -1)

    def _decode(self, feed: list[tuple[int, int, int, bool]]) -> dict[int, object]:
        """Evaluate the tokens in `feed`; the next-token logits of each sequence that asked for them."""
        import numpy as np

        # Ordered by sequence: llama.cpp splits a batch whose sequences come out of order into many
        # small ones (7x slower per step, measured with 32 sequences; see also `_close_gaps`).
        feed = sorted(feed, key=lambda item: (item[0], item[2]))
        batch = self.batch
        for i, (seq, token, pos, wants) in enumerate(feed):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, pos, 1
            batch.seq_id[i][0], batch.logits[i] = seq, wants
        batch.n_tokens = len(feed)
        self.tokens_evaluated += len(feed)
        status = self.lc.llama_decode(self.ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode failed with status {status} (is the KV cache too small?)")
        return {
            seq: np.ctypeslib.as_array(self.lc.llama_get_logits_ith(self.ctx, i), shape=(self.n_vocab,)).copy()
            for i, (seq, _, _, wants) in enumerate(feed)
            if wants
        }

    @staticmethod
    def _choose(logits, sampling: Sampling, rng) -> int:
        import numpy as np

        if sampling.temperature <= 0:
            return int(np.argmax(logits))
        scaled = (logits - logits.max()) / sampling.temperature
        probs = np.exp(scaled)
        return int(rng.choice(len(probs), p=probs / probs.sum()))


class VLLMEngine:
    """vLLM in process, for GPUs (not measured here: this project's machine has no GPU).

    vLLM schedules and batches by itself; stop strings end QG and QA lines. The answer layout and
    the calculator need a look at the text as it grows, so generation runs in rounds that stop at
    every newline or "=": finished completions leave, an open annotation gets the calculator's
    value appended, and the rest continue in the next round (vLLM's prefix cache keeps the text
    already evaluated, so a round costs only its new tokens).
    """

    def __init__(self, model: str | Path, threads: int | None = None, batch_size: int = 256):
        try:
            from vllm import LLM
        except ImportError as e:
            raise RuntimeError("the vllm engine needs vLLM and a GPU: pip install 'socratic[vllm]'") from e
        from transformers import AutoTokenizer

        self.llm = LLM(model=str(model), enable_prefix_caching=True, max_num_seqs=batch_size)
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.eos = _eos_ids(self.tokenizer, None)

    def complete(
        self,
        prompts: Sequence[str],
        until: str,
        max_new_tokens: int,
        sampling: Sampling = GREEDY,
        calculator: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> list[Completion]:
        from vllm import SamplingParams

        states = [_Decoding(self.tokenizer, until, max_new_tokens, calculator, self.eos, p) for p in prompts]
        running = list(range(len(prompts)))
        stops = ["\n", "="] if calculator else ["\n"]
        while running:
            requests = [
                {"prompt_token_ids": self.tokenizer(prompts[i])["input_ids"] + states[i].tokens} for i in running
            ]
            params = [
                SamplingParams(
                    temperature=sampling.temperature,
                    seed=sampling.seed + len(states[i].tokens),
                    max_tokens=max_new_tokens - len(states[i].tokens),
                    stop=stops,
                    include_stop_str_in_output=True,
                )
                for i in running
            ]
            for i, output in zip(running, self.llm.generate(requests, params, use_tqdm=False), strict=True):
                state = states[i]
                generated = output.outputs[0]
                for token in generated.token_ids:
                    state.add(token)
                    if state.finish is not None:
                        break
                while state.forced and state.finish is None:
                    state.add(state.forced.popleft())
                if state.finish is None and generated.finish_reason == "length":
                    state.finish = "length"
                elif state.finish is None and generated.finish_reason == "stop" and generated.stop_reason is None:
                    state.finish = "eos"  # vLLM leaves the end-of-sequence token out of token_ids
            done = [i for i in running if states[i].finish is not None]
            running = [i for i in running if states[i].finish is None]
            if progress and done:
                progress(len(done))
        return [state.result() for state in states]
