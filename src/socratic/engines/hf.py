"""`HFEngine`: batched greedy or sampled decoding with a transformers model and our own loop."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path

from socratic.core.machine import usable_cores
from socratic.engines.base import GREEDY, Completion, Decoding, Sampling, encode, eos_ids, fits, too_long


class HFEngine:
    """Batched decoding with a transformers model; see the package docstring.

    `model` is a student folder, or an already loaded model (then `tokenizer` names its folder), e.g.
    a base model carrying several LoRA adapters (`AdapterRole` picks one per call).

    A prompt whose tokens plus `max_new_tokens` exceed the model's `max_position_embeddings` is not
    decoded (past them, learned position embeddings fail and rotary ones were never trained): its
    completion has finish "too long", and the others decode as usual.
    """

    def __init__(
        self,
        model,
        batch_size: int = 32,
        dtype: str = "float32",
        threads: int | None = None,
        tokenizer: str | Path | None = None,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(threads or usable_cores())
        self.torch = torch
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer or model)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        if isinstance(model, str | Path):
            model = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype))
        self.model = model.to(device).eval()
        # transformers 5.24 renamed `past_key_values` to `cache` (the old name warns on every call).
        inner = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model  # peft
        forward_arguments = inspect.signature(inner.forward).parameters
        self.cache_argument = "cache" if "cache" in forward_arguments else "past_key_values"
        self.device = device
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.eos = eos_ids(self.tokenizer, self.model.generation_config.eos_token_id)
        self.max_positions: int | None = getattr(self.model.config, "max_position_embeddings", None)

    def complete(
        self,
        prompts: Sequence[str],
        until: str,
        max_new_tokens: int,
        sampling: Sampling = GREEDY,
        calculator: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> list[Completion]:
        encoded = [encode(self.tokenizer, p) for p in prompts]
        results: list[Completion | None] = [
            None if fits(len(ids), max_new_tokens, self.max_positions, "hf") else too_long() for ids in encoded
        ]
        # Longest first, so that prompts of similar lengths share a batch.
        order = sorted((i for i, r in enumerate(results) if r is None), key=lambda i: -len(encoded[i]))
        if progress and len(order) < len(prompts):
            progress(len(prompts) - len(order))  # the prompts too long to decode are done already
        generator = self.torch.Generator(device=self.device).manual_seed(sampling.seed)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            states = [Decoding(self.tokenizer, until, max_new_tokens, calculator, self.eos, prompts[i]) for i in batch]
            self._decode([encoded[i] for i in batch], states, sampling, generator)
            for i, state in zip(batch, states, strict=True):
                results[i] = state.result()
            if progress:
                progress(len(batch))
        return results  # type: ignore[return-value]

    def _decode(self, rows: list[list[int]], states: list[Decoding], sampling: Sampling, generator) -> None:
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
            **{self.cache_argument: cache},
            use_cache=True,
            logits_to_keep=1,
        )
        return out.logits[:, -1, :].float()

    def _choose(self, logits, sampling: Sampling, generator):
        if sampling.temperature <= 0:
            return logits.argmax(-1)
        probs = self.torch.softmax(logits / sampling.temperature, dim=-1)
        if sampling.top_p < 1:
            ordered, order = probs.sort(dim=-1, descending=True)
            # A token stays if the likelier ones before it do not reach top_p yet (the likeliest always stays).
            outside = ordered.cumsum(dim=-1) - ordered >= sampling.top_p
            outside[..., 0] = False
            probs = probs.scatter(-1, order, ordered.masked_fill(outside, 0.0))
        return self.torch.multinomial(probs, 1, generator=generator).squeeze(1)


class AdapterRole:
    """One role (QG or QA) of a model that carries both roles' LoRA adapters: switches the model to
    this role's adapter, then decodes with the shared engine. One base model in memory for two students."""

    def __init__(self, engine: HFEngine, adapter: str):
        self.engine, self.adapter = engine, adapter

    def complete(self, prompts: Sequence[str], *args, **kwargs) -> list[Completion]:
        self.engine.model.set_adapter(self.adapter)
        return self.engine.complete(prompts, *args, **kwargs)
