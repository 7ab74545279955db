"""The in-process teacher before issue 20, kept for tests and benchmarks: the reference the batched
teacher is checked against, token for token."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from socratic.core.machine import threads_within_cores
from socratic.teacher.protocol import Reply, Request, TeacherSampling


class SequentialLlama:
    """The in-process teacher before issue 20: llama-cpp-python's `Llama`, one request after another.

    Kept as the reference the batched `LlamaCppBackend` is tested against (its replies, token for
    token) and benchmarked against (`benchmarks/annotate_concurrency.py --sequential`). It counts the
    prompt tokens llama.cpp really evaluated: `Llama` continues from the previous prompt's cells."""

    batch_size = 1
    thread_safe = False

    def __init__(self, gguf: str | os.PathLike, threads: int | None = None):
        from llama_cpp import Llama

        from socratic.llamacpp.buffers import without_repacking

        self.model_name = os.path.basename(gguf)
        with without_repacking():
            self.llm = Llama(model_path=str(gguf), n_ctx=4096, n_threads=threads_within_cores(threads), verbose=False)
        self.prompt_tokens_evaluated = 0
        evaluate = self.llm.eval

        def counted(tokens):
            self.prompt_tokens_evaluated += len(tokens)  # (generated tokens are fed one by one: subtracted below)
            return evaluate(tokens)

        self.llm.eval = counted

    def generate(self, requests: Sequence[Request], sampling: TeacherSampling) -> list[Reply]:
        replies = []
        for request in requests:
            started = time.perf_counter()
            response = self.llm.create_chat_completion(
                request.messages,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_tokens,
                seed=request.seed,
            )
            choice, usage = response["choices"][0], response["usage"]
            # Each generated token but the last is fed back through `eval`: not prompt tokens.
            self.prompt_tokens_evaluated -= max(usage["completion_tokens"] - 1, 0) + (choice["finish_reason"] == "stop")
            replies.append(
                Reply(
                    choice["message"]["content"] or "",
                    choice["finish_reason"],
                    usage["prompt_tokens"],
                    usage["completion_tokens"],
                    time.perf_counter() - started,
                )
            )
        return replies
