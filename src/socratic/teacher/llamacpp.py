"""The in-process teacher: a GGUF chat model decoded by llama.cpp, many replies at once.

    socratic annotate --teacher llamacpp:qwen2.5-coder-1.5b --dataset svamp --limit 20 --concurrency 8

Up to `concurrency` replies decode together (`socratic.llamacpp.batch.LlamaBatch`, the machinery of the
students' llama.cpp engine): a finished reply's sequence takes the next request at once. Every
request of a run starts with the same chat-templated system text and few-shot exemplars; that prefix
is evaluated once and its KV cells copied into each new sequence, and the k samples of one problem
(`--samples k`) copy the whole prompt, so each evaluates only its first token.

Each reply is what llama-cpp-python's `Llama.create_chat_completion` gives for the same request: the
GGUF's chat template rendered by llama-cpp-python's own formatter, the prompt tokenized as it does,
its sampler chain (top-k 40, top-p, min-p 0.05, temperature, seeded per sample; greedy at
temperature 0), its stop rules (an end-of-generation token, the template's stop text, `max_tokens`)
and its token counts. Attention is computed as `Llama` computes it (no flash attention), so greedy
replies match the sequential teacher's token for token (tests/teacher/test_llamacpp.py).
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from socratic.core.machine import usable_cores
from socratic.llamacpp.batch import LlamaBatch
from socratic.llamacpp.jobs import Job
from socratic.teacher.protocol import Reply, Request, TeacherError, TeacherSampling
from socratic.text.checked import tokenizable

# Requests sharing at least this many leading tokens with a computed sequence copy its cells: the
# few-shot prefix is hundreds of tokens; two different prompts share a few (the template's start).
SHARED_PREFIX_TOKENS = 32

# What `Llama.create_chat_completion` samples with besides temperature and top-p (its defaults).
TOP_K, MIN_P, TYPICAL_P = 40, 0.05, 1.0


class LlamaCppBackend:
    """A GGUF model run by llama.cpp inside this process (the embedded default teacher).

    `stream` answers requests as they finish, up to `concurrency` at once; `generate` is the
    Backend protocol's call (all the replies, in order). `n_ctx` is the room of each reply's
    sequence: prompt plus reply, as in one `Llama(n_ctx=...)`.
    """

    batch_size = 1
    thread_safe = False  # one llama.cpp context: `stream` decodes the concurrent replies itself

    def __init__(self, gguf_path: str, concurrency: int = 4, n_ctx: int = 4096, n_threads: int | None = None):
        self.model_name = os.path.basename(gguf_path)
        self.concurrency = concurrency
        self.engine = LlamaBatch(
            gguf_path,
            threads=n_threads or usable_cores(),
            batch_size=concurrency,
            context_per_sequence=n_ctx,
            share_prefix=SHARED_PREFIX_TOKENS,
            # No prompt-lookup drafts: checking drafts reads several tokens of a sequence in one pass, and
            # on quantised weights that sums in another order than one token at a time (greedy replies
            # then drift from the sequential teacher's; the slow test caught it at concurrency 1).
            lookup=0,
            flash_attention=False,  # with passes of 512 tokens, as `Llama` computes: see LlamaBatch
            ubatch=512,
        )
        self.lc = self.engine.lc
        self.chat = _chat_formatter(self.lc, self.engine.model, self.engine.vocab)
        stops = self.chat(messages=[{"role": "user", "content": ""}]).stop or []
        self.stops = [s.encode() for s in ([stops] if isinstance(stops, str) else stops) if s]

    def close(self) -> None:
        self.engine.close()

    def prompt_ids(self, request: Request) -> list[int]:
        """The request's chat messages as `Llama.create_chat_completion` tokenizes them."""
        result = self.chat(messages=request.messages)
        prompt = tokenizable(result.prompt, "a teacher prompt").encode()
        return _tokenize(self.lc, self.engine.vocab, prompt, add_bos=not result.added_special)

    def generate(self, requests: Sequence[Request], sampling: TeacherSampling) -> list[Reply]:
        replies: dict[int, Reply] = {}
        for index, reply in self.stream(requests, sampling):
            if isinstance(reply, TeacherError):
                raise reply
            replies[index] = reply
        return [replies[i] for i in range(len(requests))]

    def stream(
        self, requests: Sequence[Request], sampling: TeacherSampling, stop: threading.Event | None = None
    ) -> Iterator[tuple[int, Reply | TeacherError]]:
        """(index of the request, its reply or why it failed) as each reply ends. Requests enter the
        engine a few at a time, in order (so the samples of one problem start together and share its
        prompt). Once `stop` is set no new request starts; the replies being decoded still come."""
        queue = deque(enumerate(requests))
        by_ticket: dict[int, int] = {}  # engine ticket -> index of the request
        engine = self.engine
        while queue or engine.busy:
            if stop is not None and stop.is_set():
                queue.clear()
                for ticket, job in engine.cancel_waiting().items():  # submitted, not started: nothing lost
                    del by_ticket[ticket]
                    job.state.result()  # frees its sampler
            # Enough waiting to fill every slot that frees in the next step, not the whole run.
            while queue and len(engine.waiting) < self.concurrency:
                index, request = queue.popleft()
                job = self._job(request, sampling)
                if isinstance(job, TeacherError):
                    yield index, job
                    continue
                (ticket,) = engine.submit_jobs([job])
                by_ticket[ticket] = index
            for ticket, reply in engine.step():
                yield by_ticket.pop(ticket), reply

    def _job(self, request: Request, sampling: TeacherSampling) -> Job | TeacherError:
        ids = self.prompt_ids(request)
        context = self.engine.fits(ids, sampling.max_tokens)
        if context is None or len(ids) >= context:
            limit = self.engine.max_tokens_per_call if context is None else context
            return TeacherError(f"a prompt of {len(ids)} tokens does not fit the teacher's {limit} positions")
        # As `Llama`: a reply that would run past the context is cut where the context ends.
        max_new_tokens = min(sampling.max_tokens, context - len(ids))
        state = _ChatReply(self.lc, self.engine.vocab, len(ids), max_new_tokens, self.stops)
        if sampling.temperature <= 0:
            return Job(ids, state, _greedy, greedy=True)
        chain = _sampler_chain(self.lc, sampling, request.seed)
        state.sampler = chain
        engine = self.engine  # its context is looked up at each token: the engine reopens it when its cache grows
        return Job(
            ids, state, lambda logits, index: self.lc.llama_sampler_sample(chain, engine.ctx, index), greedy=False
        )


def _greedy(logits, index: int) -> int:
    import numpy as np

    return int(np.argmax(logits))  # the first of equal maxima, as llama.cpp's greedy sampler


class _ChatReply:
    """One reply while its tokens arrive (the `DecodeState` of `LlamaBatch`), ending as
    `Llama.create_completion` ends: at an end-of-generation token (not counted, not shown), at
    the chat template's stop text (cut there), or after `max_new_tokens`."""

    def __init__(self, lc, vocab, prompt_tokens: int, max_new_tokens: int, stops: list[bytes]):
        self.lc, self.vocab, self.stops = lc, vocab, stops
        self.prompt_tokens, self.max_new_tokens = prompt_tokens, max_new_tokens
        self.tokens: list[int] = []
        self.forced: deque[int] = deque()  # (the teacher has no calculator)
        self.finish: str | None = None
        self.text = b""
        self.sampler: Any = None
        self.started = time.perf_counter()
        self._piece = ctypes.create_string_buffer(64)

    def add(self, token: int) -> None:
        self.tokens.append(token)
        if self.lc.llama_vocab_is_eog(self.vocab, token):
            self.finish = "stop"
            return
        n = self.lc.llama_token_to_piece(self.vocab, token, self._piece, len(self._piece), 0, False)
        self.text += self._piece.raw[: max(n, 0)]
        if found := [s for s in self.stops if s in self.text]:
            self.text = self.text[: self.text.index(found[0])]
            self.finish = "stop"
        elif len(self.tokens) >= self.max_new_tokens:
            self.finish = "length"

    def result(self) -> Reply:
        if self.sampler is not None:
            self.lc.llama_sampler_free(self.sampler)
            self.sampler = None
        eog = self.tokens and self.lc.llama_vocab_is_eog(self.vocab, self.tokens[-1])
        return Reply(
            text=self.text.decode("utf-8", errors="ignore"),
            finish_reason=self.finish or "length",
            tokens_in=self.prompt_tokens,
            tokens_out=len(self.tokens) - bool(eog),
            seconds=time.perf_counter() - self.started,
        )


def _sampler_chain(lc, sampling: TeacherSampling, seed: int):
    """llama.cpp's sampler chain as `Llama` builds it for these settings (its penalties are off)."""
    chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
    for sampler in (
        lc.llama_sampler_init_top_k(TOP_K),
        lc.llama_sampler_init_typical(TYPICAL_P, 1),
        lc.llama_sampler_init_top_p(sampling.top_p, 1),
        lc.llama_sampler_init_min_p(MIN_P, 1),
        lc.llama_sampler_init_temp(sampling.temperature),
        lc.llama_sampler_init_dist(seed),
    ):
        lc.llama_sampler_chain_add(chain, sampler)
    return chain


def _tokenize(lc, vocab, text: bytes, add_bos: bool) -> list[int]:
    """Token ids of `text`, special tokens parsed (as `Llama.tokenize(..., special=True)`)."""
    room = len(text) + 2
    tokens = (lc.llama_token * room)()
    n = lc.llama_tokenize(vocab, text, len(text), tokens, room, add_bos, True)
    if n < 0:
        raise RuntimeError(f"llama.cpp could not tokenize a prompt of {len(text)} bytes")
    return list(tokens[:n])


def _metadata(lc, model) -> dict[str, str]:
    """The GGUF's metadata as strings (as `Llama.metadata`)."""
    found = {}
    for i in range(lc.llama_model_meta_count(model)):
        values = []
        for read in (lc.llama_model_meta_key_by_index, lc.llama_model_meta_val_str_by_index):
            size = read(model, i, None, 0) + 1
            buffer = ctypes.create_string_buffer(size)
            read(model, i, buffer, size)
            values.append(buffer.value.decode("utf-8", errors="replace"))
        found[values[0]] = values[1]
    return found


def _chat_formatter(lc, model, vocab):
    """The chat formatter `Llama` picks for this GGUF: a known format its template is recognised as,
    else the template itself (Jinja2), else llama-2's format."""
    from llama_cpp import llama_chat_format as chat

    metadata = _metadata(lc, model)
    if "tokenizer.chat_template" not in metadata:
        return chat.format_llama2
    named = {
        "chatml": chat.format_chatml,
        "mistral-instruct": chat.format_mistral_instruct,
        "llama-3": chat.format_llama3,
    }
    guessed = chat.guess_chat_format_from_gguf_metadata(metadata)
    if guessed in named:
        return named[guessed]

    def text(token: int) -> str:
        return lc.llama_vocab_get_text(vocab, token).decode("utf-8") if token != -1 else ""

    eos = lc.llama_vocab_eos(vocab)
    return chat.Jinja2ChatFormatter(
        template=metadata["tokenizer.chat_template"],
        eos_token=text(eos),
        bos_token=text(lc.llama_vocab_bos(vocab)),
        stop_token_ids=[eos],
    )
