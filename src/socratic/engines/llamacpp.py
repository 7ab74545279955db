"""`LlamaCppEngine`: a student exported to GGUF, decoded by llama.cpp with continuous batching,
KV-cache sequences that outlive a call, and prompt-lookup drafts when few sequences are left
(`socratic.llamacpp.batch`, which the in-process teacher shares)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from socratic.engines.base import GREEDY, Completion, Decoding, Sampling, encode, eos_ids, fits, too_long
from socratic.llamacpp.batch import LlamaBatch
from socratic.llamacpp.jobs import Job


class LlamaCppEngine(LlamaBatch):
    """The students' llama.cpp engine: `LlamaBatch` with the student's own tokenizer, formats' stop
    rules and the calculator (`Decoding`), greedy or sampled with numpy. `model` is a .gguf file
    (`gguf_io.export_gguf` writes one for a trained student); `tokenizer` is the student's folder, so
    that prompts become exactly the token ids the student was trained on.

    How prompts are batched, parked and continued is `LlamaBatch`'s docstring. A prompt whose tokens
    plus `max_new_tokens` do not fit a sequence is not decoded: its completion has finish "too long",
    and the rest of the batch runs as usual. `complete` is submit-and-step.
    """

    def __init__(
        self,
        model: str | Path,
        tokenizer: str | Path,
        threads: int | None = None,
        batch_size: int = 32,
        context_per_sequence: int = 1024,
        keep_cache: bool = True,
        lookup: int = 10,
        draft_window: int = 16,
        grow: bool = True,
    ):
        from transformers import AutoTokenizer

        super().__init__(model, threads, batch_size, context_per_sequence, keep_cache, lookup, draft_window, grow=grow)
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        self.eos = eos_ids(self.tokenizer, self.lc.llama_vocab_eos(self.vocab))

    def complete(
        self,
        prompts: Sequence[str],
        until: str,
        max_new_tokens: int,
        sampling: Sampling = GREEDY,
        calculator: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> list[Completion]:
        if self.busy:
            raise RuntimeError("complete() while submitted prompts are still running: step() them first")
        tickets = self.submit(prompts, until, max_new_tokens, sampling, calculator)
        done: dict[int, Completion] = {}
        while self.busy:
            for ticket, completion in self.step():
                done[ticket] = completion
                if progress:
                    progress(1)
        return [done[ticket] for ticket in tickets]

    def text_so_far(self, ticket: int) -> str:
        """What a submitted completion has written until now ("" before it starts or once it ended)."""
        request = self.requests.get(ticket)
        return request.state.text if request is not None else ""

    def submit(
        self,
        prompts: Sequence[str],
        until: str,
        max_new_tokens: int,
        sampling: Sampling = GREEDY,
        calculator: bool = False,
    ) -> list[int]:
        """Queue prompts to decode beside whatever runs already; `step` advances them. One ticket each;
        a prompt that does not fit a sequence comes back from the next `step` as "too long"."""
        import numpy as np

        jobs: list[Job | tuple[list[int], Completion]] = []
        for n, prompt in enumerate(prompts, start=self.next_ticket):
            ids = encode(self.tokenizer, prompt)
            context = self.fits(ids, max_new_tokens)
            if context is None or not fits(len(ids), max_new_tokens, context, "llama.cpp"):
                jobs.append((ids, too_long()))
                continue
            # Seeded by the sampling seed and the prompt's ticket (its place in the engine's stream of prompts).
            rng = np.random.default_rng([sampling.seed, n]) if sampling.temperature > 0 else None
            state = Decoding(self.tokenizer, until, max_new_tokens, calculator, self.eos, prompt)
            jobs.append(Job(ids, state, _chooser(sampling, rng), greedy=sampling.temperature <= 0))
        return self.submit_jobs(jobs)


def _chooser(sampling: Sampling, rng) -> Callable:
    """The next token from a row of logits: the most likely one, or drawn at the temperature."""
    import numpy as np

    def choose(logits, index: int) -> int:
        if sampling.temperature <= 0:
            return int(np.argmax(logits))
        scaled = (logits - logits.max()) / sampling.temperature
        probs = np.exp(scaled)
        probs /= probs.sum()
        if sampling.top_p < 1:
            # A token stays if the likelier ones before it do not reach top_p yet (the likeliest always stays).
            order = np.argsort(-probs, kind="stable")
            ordered = probs[order]
            kept = np.zeros_like(probs)
            inside = np.cumsum(ordered) - ordered < sampling.top_p
            inside[0] = True
            kept[order] = np.where(inside, ordered, 0.0)
            probs = kept / kept.sum()
        return int(rng.choice(len(probs), p=probs))

    return choose
