"""`LlamaCppEngine`: a student exported to GGUF, decoded by llama.cpp with continuous batching,
KV-cache sequences that outlive a call, and prompt-lookup drafts when few sequences are left."""

from __future__ import annotations

import ctypes
import functools
import itertools
import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from socratic.engines.base import GREEDY, Completion, Decoding, Sampling, eos_ids, fits, too_long
from socratic.engines.lookup import PromptLookup
from socratic.llama_buffers import model_params


def _shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


@dataclass
class _Request:
    """A submitted prompt: its token ids and decoding state, and the drafts fed after its last token."""

    ids: list[int]
    state: Decoding
    sampling: Sampling
    rng: object | None  # sampling only
    drafts: list[int] = field(default_factory=list)
    lookup: PromptLookup | None = None


@functools.cache
def _silent_llama_log():
    """A llama.cpp log callback that drops everything (kept alive for the process: llama.cpp holds it)."""
    import llama_cpp

    return llama_cpp.llama_log_callback(lambda level, text, user_data: None)


class LlamaCppEngine:
    """Continuous batching with llama.cpp; see the package docstring. `model` is a .gguf file
    (`gguf_io.export_gguf` writes one for a trained student); `tokenizer` is the student's folder, so
    that prompts become exactly the token ids the student was trained on.

    Up to `batch_size` sequences decode together, each in its own KV-cache sequence. Each llama.cpp
    call (`step`) carries one new token for every running sequence plus the whole prompts of
    sequences that start in freed slots, so the batch stays full until the prompts run out. Prompts
    can be submitted while others run (`submit`, then `step` until not `busy`; the iterative loop
    does with `continuous=True`). `complete` is submit-and-step.

    Finished sequences keep their KV cells ("parked") until a fresh prompt needs the slot (the one
    parked longest ago goes first), and a later prompt that starts with the same tokens continues
    from them: only its new tokens are evaluated. The iterative loop asks QG and QA about the same
    problems again and again with a history that only grows, so each call reads just the line the
    other model wrote (`keep_cache=False` recomputes every prompt).

    Once no prompt is waiting and fewer than `draft_window` sequences run, a llama.cpp call costs
    about the same for a few more tokens (its time goes to reading the weights, not to arithmetic:
    on 2 cores 1 token took 28 ms, 8 tokens of one sequence 47 ms). Each greedy sequence then also
    feeds up to `lookup` draft tokens (`PromptLookup`, and the calculator's value once it is
    known) and keeps the longest prefix its own logits agree with, so the text is the one decoding
    token by token gives; the cells of rejected drafts are dropped. `lookup=0` turns this off.

    Each sequence has room for `context_per_sequence` positions: the number asked for, at most the
    model's training context, as llama.cpp rounds it up (to a multiple of 256: 784 becomes 1,024).
    The KV cache holds `batch_size + 1` such sequences, so memory grows with both. A prompt whose
    tokens plus `max_new_tokens` do not fit, or longer than one llama.cpp call (2,048 tokens), is
    not decoded: its completion has finish "too long", and the rest of the batch runs as usual.
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
    ):
        import llama_cpp as lc
        from transformers import AutoTokenizer

        self.lc = lc
        self.batch_size, self.keep_cache = batch_size, keep_cache
        self.spare = batch_size  # one sequence more than the batch: scratch space to swap two sequences
        # finished sequence -> (the ticket it finished, the tokens its cells hold), oldest first
        self.parked: dict[int, tuple[int, list[int]]] = {}
        self.requests: dict[int, _Request] = {}  # ticket -> a prompt submitted and not finished
        self.tickets = itertools.count()
        self.waiting: deque[int] = deque()  # tickets of fresh prompts, in the order they start
        self.refused: list[tuple[int, Completion]] = []  # prompts too long to decode, returned by the next step
        self.reserved: dict[int, tuple[int, int]] = {}  # ticket -> (parked sequence it continues, tokens kept)
        self.slots: dict[int, int] = {}  # running sequence -> ticket
        self.feed: list[tuple[int, int, int, bool]] = []  # the next call: (sequence, token, position, wants logits)
        self.lookup, self.draft_window = lookup, draft_window
        self.tokens_evaluated = 0  # prompt and generated tokens llama.cpp has computed, for benchmarks
        self.drafts_fed = self.drafts_accepted = 0  # draft tokens checked, and kept, for benchmarks
        threads = threads or os.cpu_count() or 1
        lc.llama_log_set(_silent_llama_log(), ctypes.c_void_p(0))  # llama.cpp logs every graph it builds
        lc.llama_backend_init()
        self.model = lc.llama_model_load_from_file(str(model).encode(), model_params())  # no AMX repacking
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {model}")
        # Positions past the model's training context would decode, but into text nobody trained.
        trained = lc.llama_model_n_ctx_train(self.model)
        params = lc.llama_context_default_params()
        params.n_ctx = (batch_size + 1) * min(context_per_sequence, trained)
        params.n_batch = params.n_ubatch = self.max_tokens_per_call = 2048
        params.n_seq_max = batch_size + 1
        params.n_threads = params.n_threads_batch = threads
        # One KV stream per sequence: a unified cache would make every token attend over (and mask)
        # the cells of all sequences, which made batched decoding slower than one at a time.
        params.kv_unified = False
        params.flash_attn_type = 1  # enabled; llama.cpp's CPU flash attention skips the empty cells
        self.ctx = lc.llama_init_from_model(self.model, params)
        self.context_per_sequence = min(lc.llama_n_ctx_seq(self.ctx), trained)  # what each stream really holds
        self.batch = lc.llama_batch_init(self.max_tokens_per_call, 0, 1)
        self.memory = lc.llama_get_memory(self.ctx)
        self.n_vocab = lc.llama_vocab_n_tokens(lc.llama_model_get_vocab(self.model))
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        self.eos = eos_ids(self.tokenizer, lc.llama_vocab_eos(lc.llama_model_get_vocab(self.model)))

    def close(self) -> None:
        """Free llama.cpp's memory (also done when the engine is garbage-collected)."""
        if getattr(self, "ctx", None):
            self.lc.llama_batch_free(self.batch)
            self.lc.llama_free(self.ctx)
            self.lc.llama_model_free(self.model)
            self.ctx = None

    def __del__(self):
        # Not `contextlib.suppress`: at interpreter shutdown module globals (contextlib, llama_cpp) may be gone.
        try:  # noqa: SIM105
            self.close()
        except Exception:
            pass

    # --- what a caller uses -------------------------------------------------------------------------

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

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.reserved or self.slots or self.refused)

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

        tickets = []
        for prompt in prompts:
            ids = self.tokenizer(prompt)["input_ids"]
            ticket = next(self.tickets)
            tickets.append(ticket)
            if not self._fits(ids, max_new_tokens):
                self._refuse(ticket, ids)
                continue
            rng = np.random.default_rng([sampling.seed, ticket]) if sampling.temperature > 0 else None
            state = Decoding(self.tokenizer, until, max_new_tokens, calculator, self.eos, prompt)
            self.requests[ticket] = _Request(ids, state, sampling, rng)
        decoded = [t for t in tickets if t in self.requests]
        self._reserve_parked(decoded)
        # Long prompts first: short ones then fill the room left in the last llama.cpp call.
        self.waiting.extend(
            sorted((t for t in decoded if t not in self.reserved), key=lambda t: -len(self.requests[t].ids))
        )
        return tickets

    def step(self) -> list[tuple[int, Completion]]:
        """One llama.cpp call: start the waiting prompts that fit, move every running sequence on by a
        token (or by the drafts it agrees with), and return the completions that ended, by ticket."""
        finished, self.refused = self.refused, []
        self._start_waiting()
        if not (self.waiting or self.reserved):
            self.feed = self._close_gaps(self.feed)
        if not self.feed:
            return finished
        logits = self._decode(self.feed)
        self.feed = []
        going = []
        for seq, rows in logits.items():
            ticket = self.slots[seq]
            request = self.requests[ticket]
            state = request.state
            drafts, request.drafts = request.drafts, []
            kept = self._accept(request, rows, drafts)
            if drafts:
                self.drafts_fed += len(drafts)
                self.drafts_accepted += kept
                # Drop the cells of rejected drafts: the sequence holds its prompt and tokens but the last.
                self.lc.llama_memory_seq_rm(self.memory, seq, len(request.ids) + len(state.tokens) - 1, -1)
            if state.finish is None:
                going.append(seq)
                continue
            del self.slots[seq], self.requests[ticket]
            if self.keep_cache:
                self.parked[seq] = (ticket, request.ids + state.tokens[:-1])  # the last token was never fed
            else:
                self._forget(seq)
            finished.append((ticket, state.result()))
        full = self.waiting or self.reserved  # the next call fills up with prompts anyway
        k = 0 if full else min(self.lookup, self.draft_window // max(len(self.slots), 1) - 1)
        for seq in going:
            request = self.requests[self.slots[seq]]
            request.drafts = self._drafts(request, k)
            position = len(request.ids) + len(request.state.tokens) - 1
            tokens = [request.state.tokens[-1], *request.drafts]
            self.feed += [(seq, token, pos, True) for pos, token in enumerate(tokens, position)]
        return finished

    def _fits(self, ids: list[int], max_new_tokens: int) -> bool:
        # A prompt is also read in one llama.cpp call: at most `max_tokens_per_call` tokens.
        context = min(self.context_per_sequence, self.max_tokens_per_call + max_new_tokens)
        return fits(len(ids), max_new_tokens, context, "llama.cpp")

    def _refuse(self, ticket: int, ids: list[int]) -> None:
        """Return the prompt as "too long" at the next step. The parked sequence it would have continued
        now goes by its ticket, so that releasing the caller's latest ticket frees it."""
        self.refused.append((ticket, too_long()))
        if (closest := self._closest_parked(ids)) is not None:
            seq = closest[0]
            self.parked[seq] = (ticket, self.parked[seq][1])

    # --- sequences and their KV cells ---------------------------------------------------------------

    def _reserve_parked(self, tickets: list[int]) -> None:
        """Pair new prompts with the parked sequence sharing their longest prefix, and cut each such
        sequence back to that prefix (`self.reserved`: ticket -> (sequence, tokens kept))."""
        for ticket in tickets:
            ids = self.requests[ticket].ids
            if (closest := self._closest_parked(ids)) is None:
                continue
            seq, shared = closest
            kept = min(shared, len(ids) - 1)  # the last prompt token is fed again for its logits
            if kept == 0 or not self.lc.llama_memory_seq_rm(self.memory, seq, kept, -1):
                continue  # (a cache that cannot drop its tail, e.g. a recurrent one, starts afresh)
            del self.parked[seq]
            self.reserved[ticket] = (seq, kept)

    def _closest_parked(self, ids: list[int]) -> tuple[int, int] | None:
        """The parked sequence sharing the longest prefix with `ids`, and how long that prefix is.
        Only sequences that start with the same few tokens (the problem) are compared."""
        key = 8
        candidates = [seq for seq, (_, tokens) in self.parked.items() if tokens[:key] == ids[:key]]
        if not candidates:
            return None
        shared = {seq: _shared_prefix(self.parked[seq][1], ids) for seq in candidates}
        seq = max(candidates, key=shared.__getitem__)
        return seq, shared[seq]

    def release(self, tickets: Sequence[int]) -> None:
        """The caller will not continue these finished completions: free their sequences now, before
        the ones parked longest ago (which may still be continued)."""
        done = set(tickets)
        for seq in [seq for seq, (ticket, _) in self.parked.items() if ticket in done]:
            self._forget(seq)

    def cancel(self, tickets: Sequence[int]) -> None:
        """Stop these submitted prompts wherever they are (waiting, reserved, running) and free their
        sequences at once, so that the next waiting prompt can start in the next call."""
        gone = set(tickets)
        self.waiting = deque(t for t in self.waiting if t not in gone)
        self.refused = [(t, c) for t, c in self.refused if t not in gone]
        freed = [seq for t, (seq, _) in self.reserved.items() if t in gone]
        freed += [seq for seq, t in self.slots.items() if t in gone]
        for ticket in gone & set(self.reserved):
            del self.reserved[ticket]
        for seq in freed:
            self.slots.pop(seq, None)
            self._forget(seq)
        self.feed = [item for item in self.feed if item[0] not in freed]
        for ticket in gone:
            self.requests.pop(ticket, None)

    def text_so_far(self, ticket: int) -> str:
        """What a submitted completion has written until now ("" before it starts or once it ended)."""
        request = self.requests.get(ticket)
        return request.state.text if request is not None else ""

    def _start_waiting(self) -> None:
        """Put waiting prompts into sequences while the call has room: continuations of parked
        sequences first (their sequence is theirs), then fresh prompts into free or evicted ones."""
        for ticket, (seq, kept) in list(self.reserved.items()):
            if len(self.feed) + len(self.requests[ticket].ids) - kept > self.max_tokens_per_call:
                return
            del self.reserved[ticket]
            self._run(seq, ticket, kept)
        while self.waiting and len(self.feed) + len(self.requests[self.waiting[0]].ids) <= self.max_tokens_per_call:
            seq = self._free_sequence()
            if seq is None:
                return
            self._run(seq, self.waiting.popleft(), 0)

    def _run(self, seq: int, ticket: int, start: int) -> None:
        ids = self.requests[ticket].ids
        self.slots[seq] = ticket
        self.feed += [(seq, token, pos, pos == len(ids) - 1) for pos, token in enumerate(ids[start:], start)]

    def _free_sequence(self) -> int | None:
        """The lowest unused sequence id (llama.cpp batches contiguous ids in one pass), else the one
        parked longest ago, its cells dropped; None while every sequence runs or is reserved."""
        taken = set(self.slots) | set(self.parked) | {seq for seq, _ in self.reserved.values()}
        unused = next((seq for seq in range(self.batch_size) if seq not in taken), None)
        if unused is None and self.parked:
            unused = next(iter(self.parked))
            self._forget(unused)
        return unused

    def _forget(self, seq: int) -> None:
        self.lc.llama_memory_seq_rm(self.memory, seq, -1, -1)
        self.parked.pop(seq, None)

    def _close_gaps(self, feed: list[tuple[int, int, int, bool]]) -> list[tuple[int, int, int, bool]]:
        """Move the highest running sequences into lower slots that are free or parked, so the running
        ids stay contiguous.

        llama.cpp splits a batch at every gap in the sequence ids (16 sequences with gaps decode 5x
        slower than 16 contiguous ones here); with prompts waiting, new ones fill the gaps, so this
        only runs for the tail. Moving a sequence copies its KV cells (milliseconds); a parked one
        swaps places with the running one through the spare sequence.
        """
        moves = {}
        while self.slots:
            high = max(self.slots)
            low = next((seq for seq in range(high) if seq not in self.slots), None)
            if low is None:
                break
            if low in self.parked:
                self._move(low, self.spare)
                self._move(high, low)
                self._move(self.spare, high)
                self.parked[high] = self.parked.pop(low)
            else:
                self._move(high, low)
            self.slots[low] = self.slots.pop(high)
            moves[high] = low
        return [(moves.get(seq, seq), token, pos, wants) for seq, token, pos, wants in feed]

    # --- choosing tokens ------------------------------------------------------------------------------

    def _drafts(self, request: _Request, k: int) -> list[int]:
        """Up to k tokens to check after the sequence's last token: the calculator's value where it is
        pending (certain), else a prompt-lookup guess (greedy decoding only)."""
        state = request.state
        k = min(k, state.max_new_tokens - len(state.tokens) - 1)
        if k <= 0:
            return []
        if state.forced:
            return list(state.forced)[:k]
        if request.sampling.temperature > 0:
            return []  # a sampled token would have to be drawn against the draft's probability
        if request.lookup is None:
            request.lookup = PromptLookup(request.ids)
        request.lookup.extend(state.tokens[len(request.lookup.tokens) - len(request.ids) :])
        return request.lookup.draft(k)

    def _accept(self, request: _Request, rows: list, drafts: list[int]) -> int:
        """Choose the sequence's next tokens: row i holds the logits after its last token and
        drafts[:i]; each choice that equals its draft lets the next row count too. Returns the drafts
        kept. The last row has no draft after it, so the loop always ends inside."""
        state = request.state
        for kept, (row, draft) in enumerate(zip(rows, [*drafts, None], strict=True)):
            token = state.forced.popleft() if state.forced else self._choose(row, request.sampling, request.rng)
            state.add(token)
            if token != draft or state.finish is not None:
                return kept + (token == draft)
        raise AssertionError("unreachable")

    def _move(self, source: int, target: int) -> None:
        self.lc.llama_memory_seq_cp(self.memory, source, target, -1, -1)
        self.lc.llama_memory_seq_rm(self.memory, source, -1, -1)

    def _decode(self, feed: list[tuple[int, int, int, bool]]) -> dict[int, list]:
        """Evaluate the tokens in `feed`; per sequence, the next-token logits of the tokens that asked
        for them, in position order."""
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
        rows: dict[int, list] = {}
        for i, (seq, _, _, wants) in enumerate(feed):
            if wants:
                row = np.ctypeslib.as_array(self.lc.llama_get_logits_ith(self.ctx, i), shape=(self.n_vocab,))
                rows.setdefault(seq, []).append(row)  # valid until the next llama_decode; used before it
        return rows

    @staticmethod
    def _choose(logits, sampling: Sampling, rng) -> int:
        import numpy as np

        if sampling.temperature <= 0:
            return int(np.argmax(logits))
        scaled = (logits - logits.max()) / sampling.temperature
        probs = np.exp(scaled)
        return int(rng.choice(len(probs), p=probs / probs.sum()))
