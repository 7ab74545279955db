"""`LlamaBatch`: llama.cpp in this process decoding many prompts at once, one KV-cache sequence each.

Two front ends share it: the students' engine (`engines.llamacpp.LlamaCppEngine`: the student's own
tokenizer, formats' stop rules, the calculator) and the in-process teacher
(`teacher.llamacpp.LlamaCppBackend`: the GGUF's chat template and llama.cpp's samplers). Each
hands it `Job`s (`llamacpp.jobs`: prompt token ids, a decoding state that takes the chosen tokens and
says when to stop, and how a token is chosen from the logits), submitted while others run, and `step`s
it. Loading the model (quiet logs, Ctrl-C kept) is `llamacpp.loading`.

What it does with them (continuous batching, parked sequences, prompt-lookup drafts, shared
prefixes) is described on the class.
"""

from __future__ import annotations

import ctypes
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from socratic.core.errors import SocraticError
from socratic.core.machine import threads_within_cores
from socratic.llamacpp.build import check_build
from socratic.llamacpp.jobs import Job, room_for, shared_prefix
from socratic.llamacpp.loading import interrupts_held, load_model, silent_llama_log
from socratic.llamacpp.lookup import PromptLookup


class LlamaBatch:
    """Continuous batching with llama.cpp. `model` is a .gguf file.

    Up to `batch_size` sequences decode together, each in its own KV-cache sequence. Each llama.cpp
    call (`step`) carries one new token for every running sequence plus the whole prompts of
    sequences that start in freed slots, so the batch stays full until the prompts run out. Jobs
    can be submitted while others run (`submit_jobs`, then `step` until not `busy`).

    Finished sequences keep their KV cells ("parked") until a fresh prompt needs the slot (the one
    parked longest ago goes first), and a later prompt that starts with the same tokens continues
    from them: only its new tokens are evaluated. The iterative loop asks QG and QA about the same
    problems again and again with a history that only grows, so each call reads just the line the
    other model wrote (`keep_cache=False` recomputes every prompt).

    With `share_prefix=n`, a fresh prompt that shares at least n leading tokens with a sequence
    whose cells are computed (running or parked) starts from a copy of that sequence's KV cells
    (llama.cpp's `seq_cp`; or in that very sequence, if it is parked and no other is free) and
    evaluates only the rest. A prompt whose best source starts in the same call waits one call for
    it, so a run of prompts with one few-shot prefix evaluates the prefix once, and the k samples
    of one problem evaluate its prompt once.

    Once no prompt is waiting and fewer than `draft_window` sequences run, a llama.cpp call costs
    about the same for a few more tokens (its time goes to reading the weights, not to arithmetic:
    on 2 cores 1 token took 28 ms, 8 tokens of one sequence 47 ms). Each greedy sequence then also
    feeds up to `lookup` draft tokens (`PromptLookup`, and the calculator's value once it is
    known) and keeps the longest prefix its own logits agree with, so the text is the one decoding
    token by token gives; the cells of rejected drafts are dropped. `lookup=0` turns this off.

    Each sequence may take up to `context_per_sequence` positions: the number asked for, at most the
    model's training context, rounded up to a multiple of 256 as llama.cpp rounds a sequence's room
    (784 becomes 1,024). `fits` says whether a prompt and its token budget fit that, and a front end
    refuses the ones that do not. The KV cache holds `batch_size + 1` sequences of the same room
    (llama.cpp's streams are all one size, and all of it is resident: llama.cpp zeroes it), so it
    is not allocated at that size up front: it opens when the first jobs start, with room for what
    they need (their prompts plus their whole token budgets, in steps of 256 positions), and grows
    (`_ensure_room`) once a job starts that needs more. Growing copies every held sequence's cells
    into the new cache (llama.cpp's sequence state, bit for bit), so the text is the one a cache of
    full size gives; `grow=False` allocates the full size at once, when the engine opens. An
    iterative GSM8K solve at batch 64 asked for 2,816 positions a problem (4.2 GB a student) and its
    problems needed far fewer (docs/RESULTS.md, issue 32). A prompt is also read
    in one llama.cpp call of at most `max_tokens_per_call` tokens (`context_per_sequence`, and at
    least 2,048; the call's memory grows with `ubatch`, not with this).
    """

    def __init__(
        self,
        model: str | Path,
        threads: int | None = None,
        batch_size: int = 32,
        context_per_sequence: int = 1024,
        keep_cache: bool = True,
        lookup: int = 10,
        draft_window: int = 16,
        share_prefix: int = 0,
        flash_attention: bool = True,
        ubatch: int = 2048,
        grow: bool = True,
    ):
        check_build()  # a library built for another kind of CPU would die of SIGILL, silently
        import llama_cpp as lc

        self.lc = lc
        self.batch_size, self.keep_cache, self.share_prefix = batch_size, keep_cache, share_prefix
        self.spare = batch_size  # one sequence more than the batch: scratch space to swap two sequences
        # finished sequence -> (the ticket it finished, the tokens its cells hold), oldest first
        self.parked: dict[int, tuple[int, list[int]]] = {}
        self.requests: dict[int, Job] = {}  # ticket -> a prompt submitted and not finished
        self.next_ticket = 0  # the ticket of the next job submitted
        self.waiting: deque[int] = deque()  # tickets of fresh prompts, in the order they start
        self.refused: list[tuple[int, Any]] = []  # prompts not decoded, returned by the next step
        self.reserved: dict[int, tuple[int, int]] = {}  # ticket -> (parked sequence it continues, tokens kept)
        self.slots: dict[int, int] = {}  # running sequence -> ticket
        self.feed: list[tuple[int, int, int, bool]] = []  # the next call: (sequence, token, position, wants logits)
        self.lookup, self.draft_window = lookup, draft_window
        self.need = 0  # the most positions a submitted job may take: its prompt and its whole token budget
        self.tokens_evaluated = 0  # prompt and generated tokens llama.cpp has computed, for benchmarks
        self.prompt_tokens_evaluated = 0  # of which prompt tokens (those copied from another sequence are not)
        self.drafts_fed = self.drafts_accepted = 0  # draft tokens checked, and kept, for benchmarks
        threads = threads_within_cores(threads)
        lc.llama_log_set(silent_llama_log(), ctypes.c_void_p(0))  # llama.cpp logs every graph it builds
        lc.llama_backend_init()
        # Ctrl-C while llama.cpp loads and allocates: raised once it returns (see `interrupts_held`)
        with interrupts_held() as interrupted:
            self.model = load_model(lc, model, interrupted)
            # Positions past the model's training context would decode, but into text nobody trained.
            trained = lc.llama_model_n_ctx_train(self.model)
            self.context_per_sequence = min(room_for(context_per_sequence), trained)
            # A prompt as long as a sequence's room must fit one call (a 4,096-token teacher context takes
            # 3,000-token prompts, as `Llama` did).
            self.max_tokens_per_call = max(2048, min(context_per_sequence, trained))
            self.ubatch, self.flash_attention, self.threads = ubatch, flash_attention, threads
            self.ctx = self.memory = None
            self.room = 0  # positions a sequence has in the KV cache; none until it opens
            if not grow:
                self._open_context(self.context_per_sequence)
            self.batch = lc.llama_batch_init(self.max_tokens_per_call, 0, 1)
            self.vocab = lc.llama_model_get_vocab(self.model)
            self.n_vocab = lc.llama_vocab_n_tokens(self.vocab)

    def _open_context(self, room: int) -> None:
        """A llama.cpp context whose KV cache has `room` positions for each of its sequences."""
        lc = self.lc
        params = lc.llama_context_default_params()
        params.n_ctx = (self.batch_size + 1) * room
        params.n_batch = self.max_tokens_per_call
        params.n_ubatch = min(self.ubatch, params.n_batch)  # llama.cpp computes a call in passes of this many tokens
        params.n_seq_max = self.batch_size + 1
        params.n_threads = params.n_threads_batch = self.threads
        # One KV stream per sequence: a unified cache would make every token attend over (and mask)
        # the cells of all sequences, which made batched decoding slower than one at a time (and, measured
        # for issue 32, changed greedy outputs).
        params.kv_unified = False
        # Flash attention: llama.cpp's CPU flash attention skips the empty cells. Off, and with passes
        # of 512 tokens (`ubatch`), a prompt's logits are bit for bit those of llama-cpp-python's
        # `Llama` with its defaults (what the in-process teacher was before it batched).
        params.flash_attn_type = 1 if self.flash_attention else 0
        self.ctx = lc.llama_init_from_model(self.model, params)
        if not self.ctx:
            raise SocraticError(
                f"llama.cpp could not allocate a KV cache of {self.batch_size + 1} x {room} positions: "
                "lower --batch-size or --context"
            )
        self.room = lc.llama_n_ctx_seq(self.ctx)  # what each stream really holds
        self.memory = lc.llama_get_memory(self.ctx)

    def _ensure_room(self, need: int) -> None:
        """Give every sequence room for `need` positions: a larger cache, the held sequences' cells
        copied into it (llama.cpp's sequence state, bit for bit). No KV copy may be pending (those run
        at the next llama_decode), so this is called before a step queues any."""
        if need <= self.room:
            return
        assert need <= self.context_per_sequence, f"{need} positions asked, at most {self.context_per_sequence}"
        # In steps of 256 positions: a history growing a line at a time copies the cells once per step of
        # 256 at most (10 times up to 2,816), and the cache stays within 256 positions a sequence of the need.
        room = min(room_for(need), self.context_per_sequence)
        if self.ctx is None:  # the first jobs: nothing to copy (opening a cache only to grow it cost 0.75 s)
            self._open_context(room)
            return
        lc = self.lc
        held = {*self.slots, *self.parked, *(seq for seq, _ in self.reserved.values())}
        states = {}
        for seq in sorted(held):
            size = lc.llama_state_seq_get_size(self.ctx, seq)
            data = (ctypes.c_uint8 * size)()
            written = lc.llama_state_seq_get_data(self.ctx, data, size, seq)
            assert written == size, f"llama.cpp wrote {written} of sequence {seq}'s {size} state bytes"
            states[seq] = data
        lc.llama_free(self.ctx)
        self.ctx = None
        self._open_context(room)
        assert self.room >= need, f"llama.cpp gave {self.room} positions a sequence, {need} asked"
        for seq, data in states.items():
            read = lc.llama_state_seq_set_data(self.ctx, data, len(data), seq)
            assert read == len(data), f"llama.cpp read {read} of sequence {seq}'s {len(data)} state bytes"

    def close(self) -> None:
        """Free llama.cpp's memory (also done when the object is garbage-collected)."""
        if getattr(self, "batch", None) is None:  # closed already, or failed to open
            return
        self.lc.llama_batch_free(self.batch)
        if self.ctx:
            self.lc.llama_free(self.ctx)
        self.lc.llama_model_free(self.model)
        self.batch = self.ctx = self.memory = None

    def __del__(self):
        # Not `contextlib.suppress`: at interpreter shutdown module globals (contextlib, llama_cpp) may be gone.
        try:  # noqa: SIM105
            self.close()
        except Exception:
            pass

    # --- what a front end uses ----------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.reserved or self.slots or self.refused)

    def fits(self, ids: list[int], max_new_tokens: int) -> int | None:
        """The positions a prompt and its token budget may take (None if the prompt cannot be read:
        longer than one llama.cpp call). The front end decides what a prompt that does not fit gets."""
        if len(ids) > self.max_tokens_per_call:
            return None
        return min(self.context_per_sequence, self.max_tokens_per_call + max_new_tokens)

    def submit_jobs(self, jobs: Sequence[Job | tuple[list[int], Any]]) -> list[int]:
        """Queue jobs to decode beside whatever runs already; `step` advances them. One ticket each.
        A (prompt ids, result) pair is a prompt the front end refuses: the next `step` returns its result."""
        tickets = []
        for job in jobs:
            ticket, self.next_ticket = self.next_ticket, self.next_ticket + 1
            tickets.append(ticket)
            if isinstance(job, Job):
                self.requests[ticket] = job
                self.need = max(self.need, len(job.ids) + job.state.max_new_tokens)  # (see `_ensure_room`)
            else:
                self._refuse(ticket, *job)
        decoded = [t for t in tickets if t in self.requests]
        if not self.share_prefix:  # (else parked sequences are copied from when the prompt starts)
            self._reserve_parked(decoded)
        # Long prompts first: short ones then fill the room left in the last llama.cpp call.
        self.waiting.extend(
            sorted((t for t in decoded if t not in self.reserved), key=lambda t: -len(self.requests[t].ids))
        )
        return tickets

    def step(self) -> list[tuple[int, Any]]:
        """One llama.cpp call: start the waiting prompts that fit, move every running sequence on by a
        token (or by the drafts it agrees with), and return the results of the jobs that ended, by ticket."""
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

    def cancel_waiting(self) -> dict[int, Job]:
        """Drop the jobs submitted and not started (they will never be decoded), by ticket."""
        tickets = [*self.waiting, *self.reserved]
        for seq, _ in self.reserved.values():
            self._forget(seq)
        self.waiting.clear()
        self.reserved.clear()
        return {ticket: self.requests.pop(ticket) for ticket in tickets}

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

    def _refuse(self, ticket: int, ids: list[int], result: Any) -> None:
        """Return `result` at the next step. The parked sequence the prompt would have continued now
        goes by its ticket, so that releasing the caller's latest ticket frees it."""
        self.refused.append((ticket, result))
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
        shared = {seq: shared_prefix(self.parked[seq][1], ids) for seq in candidates}
        seq = max(candidates, key=shared.__getitem__)
        return seq, shared[seq]

    def _start_waiting(self) -> None:
        """Put waiting prompts into sequences while the call has room: continuations of parked
        sequences first (their sequence is theirs), then fresh prompts into free or evicted ones."""
        self._ensure_room(self.need)
        started: dict[int, list[int]] = {}  # sequences fed their prompt in this call: no cells to copy yet
        for ticket, (seq, kept) in list(self.reserved.items()):
            if len(self.feed) + len(self.requests[ticket].ids) - kept > self.max_tokens_per_call:
                return
            del self.reserved[ticket]
            self._run(seq, ticket, kept)
            started[seq] = self.requests[ticket].ids
        held: list[int] = []  # prompts that wait for a prompt started in this call
        while self.waiting:
            ids = self.requests[self.waiting[0]].ids
            source, shared = self._prefix_source(ids, exclude=started)
            if self._source_starts_now(ids, started, shared):
                held.append(self.waiting.popleft())
                continue
            kept = min(shared, len(ids) - 1)  # the last prompt token is fed again for its logits
            if len(self.feed) + len(ids) - kept > self.max_tokens_per_call:
                break
            seq = self._free_sequence(keep=source)
            if seq is None and source in self.parked:
                seq = source  # the only sequence left is the parked source itself: continue it in place
            if seq is None:
                break
            ticket = self.waiting.popleft()
            if source is not None:
                if seq != source:
                    self._copy(source, seq)
                self.parked.pop(seq, None)
                self.lc.llama_memory_seq_rm(self.memory, seq, kept, -1)
            self._run(seq, ticket, kept)
            started[seq] = ids
        self.waiting.extendleft(reversed(held))

    def _source_starts_now(self, ids: list[int], started: dict[int, list[int]], shared: int) -> bool:
        """Whether a prompt started in this call shares more of `ids` (and at least `share_prefix`
        tokens) than any sequence whose cells are computed: then `ids` waits a call to copy it."""
        if not self.share_prefix:
            return False
        now = max((shared_prefix(ids, other) for other in started.values()), default=0)
        return now >= self.share_prefix and now > shared

    def _prefix_source(self, ids: list[int], exclude: dict[int, list[int]]) -> tuple[int | None, int]:
        """With `share_prefix`, the sequence whose computed cells share the longest prefix with `ids`
        (at least `share_prefix` tokens), and that length; else (None, 0). Running sequences offer
        their prompt (computed by the call that started them; not those in `exclude`, started in
        this one), parked ones all their tokens."""
        if not self.share_prefix:
            return None, 0
        running = {seq: self.requests[ticket].ids for seq, ticket in self.slots.items() if seq not in exclude}
        parked = {seq: tokens for seq, (_, tokens) in self.parked.items()}
        best, longest = None, 0
        for seq, tokens in (running | parked).items():
            if (n := shared_prefix(tokens, ids)) > longest:
                best, longest = seq, n
        return (best, longest) if longest >= self.share_prefix else (None, 0)

    def _run(self, seq: int, ticket: int, start: int) -> None:
        ids = self.requests[ticket].ids
        self.slots[seq] = ticket
        self.prompt_tokens_evaluated += len(ids) - start
        self.feed += [(seq, token, pos, pos == len(ids) - 1) for pos, token in enumerate(ids[start:], start)]

    def _free_sequence(self, keep: int | None = None) -> int | None:
        """The lowest unused sequence id (llama.cpp batches contiguous ids in one pass), else the one
        parked longest ago (not `keep`), its cells dropped; None while every sequence runs or is reserved."""
        taken = set(self.slots) | set(self.parked) | {seq for seq, _ in self.reserved.values()}
        unused = next((seq for seq in range(self.batch_size) if seq not in taken), None)
        if unused is None:
            unused = next((seq for seq in self.parked if seq != keep), None)
            if unused is not None:
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

    def _drafts(self, request: Job, k: int) -> list[int]:
        """Up to k tokens to check after the sequence's last token: the calculator's value where it is
        pending (certain), else a prompt-lookup guess (greedy decoding only)."""
        state = request.state
        k = min(k, state.max_new_tokens - len(state.tokens) - 1)
        if k <= 0:
            return []
        if state.forced:
            return list(state.forced)[:k]
        if not request.greedy:
            return []
        if request.lookup is None:
            request.lookup = PromptLookup(request.ids)
        request.lookup.extend(state.tokens[len(request.lookup.tokens) - len(request.ids) :])
        return request.lookup.draft(k)

    def _accept(self, request: Job, rows: list[tuple[int, Any]], drafts: list[int]) -> int:
        """Choose the sequence's next tokens: row i holds the logits after its last token and
        drafts[:i]; each choice that equals its draft lets the next row count too. Returns the drafts
        kept. The last row has no draft after it, so the loop always ends inside."""
        state = request.state
        for kept, ((index, row), draft) in enumerate(zip(rows, [*drafts, None], strict=True)):
            token = state.forced.popleft() if state.forced else request.choose(row, index)
            state.add(token)
            if token != draft or state.finish is not None:
                return kept + (token == draft)
        raise AssertionError("unreachable")

    def _copy(self, source: int, target: int) -> None:
        """Give `target` the cells of `source`. Across KV streams llama.cpp copies whole streams (the
        copy happens at the start of the next llama_decode, before that call writes any cell)."""
        self.lc.llama_memory_seq_cp(self.memory, source, target, -1, -1)

    def _move(self, source: int, target: int) -> None:
        self._copy(source, target)
        self.lc.llama_memory_seq_rm(self.memory, source, -1, -1)

    def _decode(self, feed: list[tuple[int, int, int, bool]]) -> dict[int, list[tuple[int, Any]]]:
        """Evaluate the tokens in `feed`; per sequence, the next-token logits of the tokens that asked
        for them, in position order, each with its row in the batch."""
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
        rows: dict[int, list[tuple[int, Any]]] = {}
        for i, (seq, _, _, wants) in enumerate(feed):
            if wants:
                row = np.ctypeslib.as_array(self.lc.llama_get_logits_ith(self.ctx, i), shape=(self.n_vocab,))
                rows.setdefault(seq, []).append((i, row))  # valid until the next llama_decode; used before it
        return rows
