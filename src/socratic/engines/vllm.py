"""`VLLMEngine`: vLLM in process, for GPUs (extra `socratic[vllm]`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from socratic.engines.base import GREEDY, Completion, Decoding, Sampling, encode, eos_ids, fits, too_long


class VLLMEngine:
    """vLLM in process, for GPUs (not measured here: this project's machine has no GPU).

    vLLM schedules and batches by itself; stop strings end QG and QA lines. The answer layout and
    the calculator need a look at the text as it grows, so generation runs in rounds that stop at
    every newline or "=": finished completions leave, an open annotation gets the calculator's
    value appended, and the rest continue in the next round (vLLM's prefix cache keeps the text
    already evaluated, so a round costs only its new tokens).

    A prompt whose tokens plus `max_new_tokens` exceed vLLM's `max_model_len` (the model's maximum
    positions unless set) is not decoded (vLLM would reject the whole call): its completion has
    finish "too long", and the others decode as usual.
    """

    def __init__(self, model: str | Path, threads: int | None = None, batch_size: int = 256):
        try:
            from vllm import LLM
        except ImportError as e:
            raise RuntimeError("the vllm engine needs vLLM and a GPU: pip install 'socratic[vllm]'") from e
        from transformers import AutoTokenizer

        self.llm = LLM(model=str(model), enable_prefix_caching=True, max_num_seqs=batch_size)
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.eos = eos_ids(self.tokenizer, None)
        self.max_positions = self.llm.llm_engine.model_config.max_model_len

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

        encoded = [encode(self.tokenizer, p) for p in prompts]
        states = [Decoding(self.tokenizer, until, max_new_tokens, calculator, self.eos, p) for p in prompts]
        running = [i for i, ids in enumerate(encoded) if fits(len(ids), max_new_tokens, self.max_positions, "vllm")]
        decoded = set(running)
        if progress and len(running) < len(prompts):
            progress(len(prompts) - len(running))  # the prompts too long to decode are done already
        stops = ["\n", "="] if calculator else ["\n"]
        while running:
            requests = [{"prompt_token_ids": encoded[i] + states[i].tokens} for i in running]
            params = [
                SamplingParams(
                    temperature=sampling.temperature,
                    top_p=sampling.top_p,
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
        return [state.result() if i in decoded else too_long() for i, state in enumerate(states)]
