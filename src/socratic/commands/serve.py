"""`socratic serve`: a trained student behind an OpenAI-compatible HTTP API, for your own programs.

    socratic serve --model runs/gsm8k/unified --engine llamacpp            # http://127.0.0.1:8000/v1
    socratic serve --model runs/gsm8k/iterative --port 9000                # the pair (qg/ and qa/) as one model
    curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
      -d '{"model": "unified", "messages": [{"role": "user", "content": "Tom has 3 boxes of 12 eggs ..."}]}'

Two endpoints, as OpenAI's: `GET /v1/models` lists the one model served (named after its folder,
or `--name`), and `POST /v1/chat/completions` answers, with `"stream": true` as server-sent events.
The last user message is the problem. The reply's content is the Socratic dialogue (`Q:` / `A:`
lines) and the answer line, as `socratic ask` prints it (unmarked); the extra field `socratic`
holds the steps as data, the extracted answer and how the attempt ended; `usage` counts the tokens
(the prompt: `Problem: ...` as the student reads it; the completion: every token the student wrote).

A request's decoding fields are honoured, within the server's limits (`RequestOptions`):
`max_tokens` / `max_completion_tokens` (a one-pass student's budget, or all the lines of an iterative
pair's dialogue; at most `--max-new-tokens`, resp. `--max-steps` x `--step-tokens`), `temperature`
(0 to 2; default 0, greedy), `top_p`, `seed` (reproducible for a request decoded alone with the hf
engine; best effort, as OpenAI's), `stop` (up to 4 strings: the reply ends before the first, and its
decoding stops), `stream_options.include_usage`; `n` must be 1. A value out of range is a 400 in
OpenAI's error shape naming the field (`param`).

One scheduler task owns the student's engines: every request's problem joins the running loop of
`socratic.solving.loops` at the next step, so concurrent requests are decoded together (continuous batching
with `--engine llamacpp`, one batch per step with hf), and throughput grows with load. The server
binds to 127.0.0.1 unless told otherwise (`--host 0.0.0.0` exposes it: there is no authentication).
A bad request gets a 4xx error with a message in OpenAI's shape and the server goes on; a request
whose client goes away stops and frees its place in the batch.

Whatever a client sends, no request can stop the server or fail another: the body is read strictly
(`core.jsonl.parse_json`: NaN, 5,000-digit numbers, lone surrogates and nesting past 64 levels are
a 400; over `MAX_BODY_BYTES` a 413), a problem no tokenizer can read is refused when it joins
(`Dialogues.add`, a 400 for it alone, never a batch's failure), and a client that leaves mid-body
is dropped without a log line (`benchmarks/serve_soak.py` holds all of it under load).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from socratic.core.errors import SocraticError
from socratic.core.jsonl import BadJson, parse_json
from socratic.engines import Sampling
from socratic.engines.base import TOO_LONG
from socratic.solving.dialogue import Dialogues, answer_task, refused, reply
from socratic.solving.loops import Attempt, DecodeOptions, DecodeSettings
from socratic.solving.students import EngineOptions, StudentOptions
from socratic.tasks.base import ANSWER_KINDS
from socratic.text import formats

log = logging.getLogger(__name__)

ENDED_BY_LENGTH = ("length", "max_steps", TOO_LONG)  # reported to clients as finish_reason "length"
# The largest request body read: a chat request with a problem of --max-problem-chars and some history
# is a few kB; bodies are read up to this and refused past it (413) rather than held in memory whole.
MAX_BODY_BYTES = 4 * 2**20


@dataclass(frozen=True)
class ServeConfig:
    student: StudentOptions = field(default_factory=StudentOptions)
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    runtime: EngineOptions = field(default_factory=EngineOptions)
    host: str = field(
        default="127.0.0.1", metadata={"help": "address to listen on (0.0.0.0: every interface, unauthenticated)"}
    )
    port: int = field(default=8000, metadata={"help": "TCP port", "min": 1})
    name: str | None = field(default=None, metadata={"help": "the model's name in the API (default: its folder's)"})
    max_problem_chars: int = field(
        default=8000, metadata={"help": "longest problem accepted, in characters (longer: 400)", "min": 1}
    )
    answers: str = field(
        default="number",
        metadata={"help": "the kind of answer read into the reply's socratic.answer", "choices": ANSWER_KINDS},
    )


class RequestError(Exception):
    """A request the client must fix: its HTTP status and a message."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.param = status, message, kind, code, param


@dataclass(frozen=True)
class RequestOptions:
    """What a chat request asks of decoding, checked against OpenAI's ranges (`request_options`)."""

    max_tokens: int | None = None  # None: the server's budgets
    temperature: float | None = None  # None: the server's (greedy)
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    include_usage: bool = False  # streamed: a last chunk with `usage` and no choices

    def decoding(self, server: DecodeSettings) -> DecodeSettings:
        """The server's decoding settings for this request: its sampling, its token budget (never more
        than the server's own)."""
        sampling = server.sampling
        if self.temperature is not None or self.seed is not None or self.top_p != 1:
            temperature = sampling.temperature if self.temperature is None else self.temperature
            seed = sampling.seed if self.seed is None else self.seed
            sampling = Sampling(temperature, seed, self.top_p)
        if self.max_tokens is None:
            return replace(server, sampling=sampling)
        return replace(
            server,
            decode=replace(server.decode, max_new_tokens=min(server.decode.max_new_tokens, self.max_tokens)),
            sampling=sampling,
            max_tokens=min(server.max_tokens or self.max_tokens, self.max_tokens),
        )


@dataclass
class Ticket:
    """One request's problem in the scheduler: its events arrive on `events`: ("started", None) after
    its first engine step if it goes on (a prompt too long for the context ends in that step), then
    ("text", str) pieces, and ("done", Attempt) or ("error", str); `problem` is its number in
    `Dialogues` once it has joined."""

    question: str
    decoding: DecodeSettings | None = None  # the request's own, else the server's
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    problem: int | None = None
    cancelled: bool = False
    started: bool = False


class Scheduler:
    """The one owner of the engines. Requests hand in problems (`submit`) and withdraw them (`cancel`);
    between two engine steps the scheduler adds and removes them, then runs the next step in a worker
    thread (so the event loop keeps serving) and sends each request its new text and its end."""

    def __init__(self, dialogues: Dialogues):
        self.dialogues = dialogues
        self.inbox: list[Ticket] = []
        self.tickets: dict[int, Ticket] = {}  # problem -> its request
        self.wake = asyncio.Event()
        self.stopped: str | None = None  # why the scheduler's loop ended, if it ever does (a bug)

    def submit(self, question: str, decoding: DecodeSettings | None = None) -> Ticket:
        ticket = Ticket(question, decoding)
        if self.stopped is not None:  # answer at once rather than wait for a loop that is gone
            ticket.events.put_nowait(("error", self.stopped))
            return ticket
        self.inbox.append(ticket)
        self.wake.set()
        return ticket

    def cancel(self, ticket: Ticket) -> None:
        ticket.cancelled = True
        self.wake.set()

    async def run(self) -> None:
        try:
            await self._serve()
        except asyncio.CancelledError:
            raise
        except BaseException:  # a bug: without its loop every later request would wait forever
            log.exception("the scheduler stopped")
            self.stopped = "the server's scheduler stopped (a bug, logged): restart the server"
            self._fail_all(self.stopped)
            for ticket in self.inbox:
                ticket.events.put_nowait(("error", self.stopped))
            raise

    async def _serve(self) -> None:
        while True:
            self._take_inbox()
            if not self.dialogues.busy:
                self.wake.clear()
                await self.wake.wait()
                continue
            try:
                written, finished = await asyncio.to_thread(self.dialogues.step)
            except Exception as e:  # a bug: fail the requests in flight, keep serving the next ones
                log.exception("the engine failed")
                self._fail_all(f"the engine failed: {type(e).__name__}: {e}")
                continue
            for i, text in written:
                if i in self.tickets:
                    self.tickets[i].started = True
                    self.tickets[i].events.put_nowait(("text", text))
            for i, attempt in finished:
                if (ticket := self.tickets.pop(i, None)) is not None:
                    ticket.events.put_nowait(("done", attempt))
            for ticket in self.tickets.values():
                if not ticket.started:
                    ticket.started = True
                    ticket.events.put_nowait(("started", None))

    def _take_inbox(self) -> None:
        for i, ticket in list(self.tickets.items()):
            if ticket.cancelled:
                self.dialogues.cancel(i)
                del self.tickets[i]
        arrived, self.inbox = self.inbox, []
        for ticket in arrived:
            if ticket.cancelled:
                continue
            try:
                ticket.problem = self.dialogues.add(ticket.question, ticket.decoding)
            except SocraticError as e:  # the request's own fault (text no tokenizer reads): its 400 alone
                ticket.events.put_nowait(("refused", str(e)))
                continue
            except Exception as e:  # a bug, for this request alone: its 500, logged; the others go on
                log.exception("a request could not join the engines")
                ticket.events.put_nowait(("error", f"the request could not start: {type(e).__name__}: {e}"))
                continue
            self.tickets[ticket.problem] = ticket

    def _fail_all(self, message: str) -> None:
        for i, ticket in self.tickets.items():
            self.dialogues.cancel(i)
            ticket.events.put_nowait(("error", message))
        self.tickets.clear()


def make_app(dialogues: Dialogues, name: str, max_problem_chars: int = 8000, answers: str = "number"):
    """The FastAPI application serving `dialogues` as the model `name`."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response, StreamingResponse
    from starlette.requests import ClientDisconnect

    task = answer_task(answers)
    scheduler: Scheduler | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        nonlocal scheduler
        scheduler = Scheduler(dialogues)
        running = asyncio.create_task(scheduler.run())
        yield
        running.cancel()

    app = FastAPI(title="socratic", lifespan=lifespan)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, error: RequestError) -> JSONResponse:
        body = {"error": {"message": error.message, "type": error.kind, "param": error.param, "code": error.code}}
        return JSONResponse(body, status_code=error.status)

    @app.exception_handler(ClientDisconnect)
    async def client_left(request: Request, error: ClientDisconnect) -> Response:
        # A client that went away while sending its body: nobody reads the answer, nothing to log.
        return Response(status_code=499)

    # Plain (Starlette) routes: the handlers read and check the body themselves, to answer in OpenAI's
    # error shape with a message that says what is wrong.
    async def list_models(request: Request) -> JSONResponse:
        model = {"id": name, "object": "model", "created": 0, "owned_by": "socratic"}
        return JSONResponse({"object": "list", "data": [model]})

    async def chat_completions(request: Request):
        body = await read_body(request)
        question = problem_of(body, name, max_problem_chars)
        options = request_options(body)
        assert scheduler is not None
        prompt_tokens = dialogues.prompt_tokens(question)
        ticket = scheduler.submit(question, options.decoding(dialogues.decoding))
        answer_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": answer_id, "created": created, "model": name}
        try:
            first = await next_event(ticket, request)
        except BaseException:
            scheduler.cancel(ticket)
            raise
        if first is None:  # the client went away
            scheduler.cancel(ticket)
            return JSONResponse({}, status_code=499)
        refuse_too_long(first, len(question))
        stops = StopStrings(options.stop)
        if not options.stream:
            event = first
            while event is not None and event[0] not in ("done", "error") and not stops.stopped:
                if event[0] == "text":
                    stops.add(event[1])
                if not stops.stopped:
                    event = await next_event(ticket, request)
            if event is None:
                scheduler.cancel(ticket)
                return JSONResponse({}, status_code=499)
            attempt = stopped_attempt(stops, dialogues) if stops.stopped else finished(event)
            if stops.stopped:
                scheduler.cancel(ticket)
            content = stops.text if options.stop else reply(attempt, dialogues.student.iterative)
            message = {"role": "assistant", "content": content}
            choice = {"index": 0, "message": message, "finish_reason": finish_reason(attempt)}
            return JSONResponse(
                {
                    **head,
                    "object": "chat.completion",
                    "choices": [choice],
                    "usage": usage(prompt_tokens, attempt),
                    "socratic": extra(attempt, task),
                }
            )
        return StreamingResponse(
            stream(ticket, first, head, stops, prompt_tokens, options.include_usage), media_type="text/event-stream"
        )

    async def stream(
        ticket: Ticket, first: tuple, head: dict, stops: StopStrings, prompt_tokens: int, include_usage: bool
    ) -> AsyncIterator[str]:
        """Server-sent events: the dialogue's text as it is written, then the end with the steps (and,
        when asked, a last chunk with the usage)."""
        done = False
        try:
            yield chunk(head, {"role": "assistant", "content": ""})
            event = first
            while event[0] in ("started", "text"):
                if event[0] == "text" and (new := stops.add(event[1])):
                    yield chunk(head, {"content": new})
                if stops.stopped:
                    break
                event = await ticket.events.get()
            if stops.stopped:
                assert scheduler is not None
                scheduler.cancel(ticket)
                attempt = stopped_attempt(stops, dialogues)
            else:
                attempt = finished(event)
                if rest := stops.end():
                    yield chunk(head, {"content": rest})
            yield chunk(head, {}, finish_reason(attempt), extra(attempt, task))
            if include_usage:
                last = {
                    **head,
                    "object": "chat.completion.chunk",
                    "choices": [],
                    "usage": usage(prompt_tokens, attempt),
                }
                yield f"data: {json.dumps(last)}\n\n"
            yield "data: [DONE]\n\n"
            done = True
        finally:
            if not done:  # the client disconnected (or the server stops): free the problem's place
                assert scheduler is not None
                scheduler.cancel(ticket)

    app.add_route("/v1/models", list_models, methods=["GET"])
    app.add_route("/v1/chat/completions", chat_completions, methods=["POST"])
    return app


async def read_body(request) -> dict:
    """The request's JSON object, read strictly (`parse_json`: no NaN, huge numbers, lone surrogates
    or deep nesting) and at most `MAX_BODY_BYTES` of it."""
    raw = await body_bytes(request)
    try:
        body = parse_json(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RequestError(
            400, f"the request body is not UTF-8 text (byte 0x{raw[e.start]:02x} at {e.start})"
        ) from None
    except BadJson as e:
        raise RequestError(400, f"the request body is {e.reason}") from None
    if not isinstance(body, dict):
        raise RequestError(400, f"the request body must be a JSON object, not {type(body).__name__}")
    return body


async def body_bytes(request) -> bytes:
    """The body, refused with 413 when it is larger than `MAX_BODY_BYTES`. The excess is read and
    dropped (up to 16 times the limit), so that a client still sending gets the 413, not a reset."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > 16 * MAX_BODY_BYTES:
        raise RequestError(413, f"the request body is larger than {MAX_BODY_BYTES:,} bytes")
    chunks, size = [], 0
    async for piece in request.stream():
        size += len(piece)
        if size <= MAX_BODY_BYTES:
            chunks.append(piece)
        elif size > 16 * MAX_BODY_BYTES:
            break
    if size > MAX_BODY_BYTES:
        raise RequestError(413, f"the request body is larger than {MAX_BODY_BYTES:,} bytes")
    return b"".join(chunks)


def problem_of(body: dict, name: str, max_chars: int) -> str:
    """The problem a chat request asks: its last user message, checked."""
    model = body.get("model")
    if not isinstance(model, str):
        raise RequestError(400, "'model' is required: the name GET /v1/models lists", code="missing_model")
    if model != name:
        raise RequestError(
            404, f"the model '{model}' does not exist: this server serves '{name}'", code="model_not_found"
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "'messages' must be a non-empty list of {role, content} objects")
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        raise RequestError(400, "no user message: the last user message is the problem to solve")
    question = message_text(users[-1].get("content"))
    if not question.strip():
        raise RequestError(400, "the last user message is empty: it is the problem to solve")
    if len(question) > max_chars:
        raise RequestError(
            400,
            f"the problem is {len(question)} characters long; this server takes at most {max_chars}",
            code="context_length_exceeded",
        )
    return question


def request_options(body: dict) -> RequestOptions:
    """The request's decoding fields, each checked as OpenAI checks it; a 400 naming the field if not."""
    both = body.get("max_tokens"), body.get("max_completion_tokens")
    if None not in both and both[0] != both[1]:
        raise RequestError(400, "give max_tokens or max_completion_tokens, not both", param="max_completion_tokens")
    limit = "max_completion_tokens" if both[1] is not None else "max_tokens"
    n = body.get("n", 1)
    if n is not None and (not _is_int(n) or n != 1):
        raise RequestError(400, f"'n' must be 1, not {n!r}: one dialogue per problem", param="n")
    for unsupported in ("logprobs", "top_logprobs"):
        if body.get(unsupported):
            raise RequestError(400, f"'{unsupported}' is not served by socratic", param=unsupported)
    for penalty in ("presence_penalty", "frequency_penalty"):
        if body.get(penalty) not in (None, 0, 0.0):
            raise RequestError(400, f"'{penalty}' is not served by socratic (only 0)", param=penalty)
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise RequestError(400, "'stream_options' must be an object", param="stream_options")
    return RequestOptions(
        max_tokens=_number(body, limit, int, low=1),
        temperature=_number(body, "temperature", float, low=0, high=2),
        top_p=_number(body, "top_p", float, low=0, high=1, default=1.0),
        seed=_number(body, "seed", int, low=-(2**63), high=2**63 - 1),
        stop=_stops(body.get("stop")),
        stream=_flag(body, "stream"),
        include_usage=_flag(stream_options, "include_usage"),
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(body: dict, key: str, kind: type, low: float, high: float | None = None, default: Any = None) -> Any:
    value = body.get(key)
    if value is None:
        return default
    if not (_is_int(value) or (kind is float and isinstance(value, float))):
        raise RequestError(
            400, f"'{key}' must be {'an integer' if kind is int else 'a number'}, not {value!r}", param=key
        )
    if value != value or value < low or (high is not None and value > high):  # NaN is never in range
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise RequestError(400, f"'{key}' must be {bounds}, not {value!r}", param=key)
    return kind(value)


def _flag(body: dict, key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RequestError(400, f"'{key}' must be true or false, not {value!r}", param=key)
    return value


MAX_STOPS = 4  # as OpenAI's


def _stops(value: Any) -> tuple[str, ...]:
    stops = [value] if isinstance(value, str) else value if isinstance(value, list) else None if value is None else 0
    if stops is None:
        return ()
    if stops == 0 or not all(isinstance(s, str) and s for s in stops) or len(stops) > MAX_STOPS:
        raise RequestError(
            400, f"'stop' must be a non-empty string or a list of up to {MAX_STOPS} of them", param="stop"
        )
    return tuple(stops)


class StopStrings:
    """A reply's text as it comes, ended before the first of the request's stop strings: `add` gives
    what can be sent now (text that could be the start of a stop string waits for the next piece),
    `end` the rest once the reply has ended by itself; `text` is the reply so far, cut at the stop."""

    def __init__(self, stops: Sequence[str]):
        self.stops, self.text, self.given, self.stopped = tuple(stops), "", 0, False

    def add(self, piece: str) -> str:
        self.text += piece
        found = [i for i in (self.text.find(s) for s in self.stops) if i >= 0]
        if found:
            self.text, self.stopped = self.text[: min(found)], True
            return self._give(len(self.text))
        held = max((k for s in self.stops for k in range(1, len(s)) if self.text.endswith(s[:k])), default=0)
        return self._give(len(self.text) - held)

    def end(self) -> str:
        return self._give(len(self.text))

    def _give(self, upto: int) -> str:
        new, self.given = self.text[self.given : upto], max(self.given, upto)
        return new


def stopped_attempt(stops: StopStrings, dialogues: Dialogues) -> Attempt:
    """What a reply cut at a stop string holds: its steps and answer read from the text sent, its tokens
    counted in it (decoding stopped there; the calculator's count is not known)."""
    parsed = formats.parse_chain(stops.text)
    tokens = dialogues.count_tokens(stops.text)
    return Attempt(parsed.steps, stops.text, parsed.answer_text, "stop", tokens)


def usage(prompt_tokens: int, attempt: Attempt) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": attempt.tokens,
        "total_tokens": prompt_tokens + attempt.tokens,
    }


def message_text(content: Any) -> str:
    """A message's text: a string, or OpenAI's list of parts of which the text ones count."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if all(isinstance(p, str) for p in parts):
            return "\n".join(parts)  # type: ignore[arg-type]
    raise RequestError(400, "a message's 'content' must be a string or a list of text parts")


def refuse_too_long(first: tuple, chars: int) -> None:
    """A problem whose prompt does not fit the student's context ends at once with nothing written;
    one whose text no tokenizer reads is refused before it joins."""
    if first[0] == "refused":
        raise RequestError(400, first[1])
    if first[0] == "done" and refused(first[1]):
        raise RequestError(
            400,
            f"the problem ({chars} characters) with its token budget does not fit the student's context",
            code="context_length_exceeded",
        )


async def next_event(ticket: Ticket, request) -> tuple | None:
    """The ticket's next event, or None once the client has disconnected."""
    while True:
        try:
            return await asyncio.wait_for(ticket.events.get(), timeout=0.5)
        except asyncio.TimeoutError:
            if await request.is_disconnected():
                return None


def finished(event: tuple) -> Attempt:
    if event[0] == "error":
        raise RequestError(500, event[1], kind="server_error")
    return event[1]


def finish_reason(attempt: Attempt) -> str:
    return "length" if attempt.finish in ENDED_BY_LENGTH else "stop"


def extra(attempt: Attempt, task) -> dict:
    """The reply's `socratic` field: the steps as data, the extracted answer, how the attempt ended."""
    return {
        "steps": [{"question": s.question, "answer": s.answer} for s in attempt.steps],
        "answer": task.extract_answer(attempt.answer_text),
        "finish": attempt.finish,
        "tokens": attempt.tokens,
        "calculator": attempt.calculator,
    }


def chunk(head: dict, delta: dict, finish: str | None = None, socratic: dict | None = None) -> str:
    body = {
        **head,
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if socratic is not None:
        body["socratic"] = socratic
    return f"data: {json.dumps(body)}\n\n"


def run_serve(config: ServeConfig) -> None:
    try:
        import uvicorn
    except ImportError:
        raise SocraticError("socratic serve needs FastAPI and uvicorn: pip install 'socratic[serve]'") from None
    check_port_free(config.host, config.port)
    student = config.student.student()
    name = config.name or student.name
    dialogues = Dialogues(student, config.runtime, config.decode.settings())
    app = make_app(dialogues, name, config.max_problem_chars, config.answers)
    print(f"socratic: serving '{name}' ({student.method.name}) on http://{config.host}:{config.port}/v1", flush=True)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning")


def check_port_free(host: str, port: int) -> None:
    """Refuse a taken address before the students load (uvicorn would exit with a log line only)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as e:
            raise SocraticError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


class ServerThread:
    """`make_app`'s server in a thread of this process on a free loopback port (tests, benchmarks):

    with ServerThread(make_app(dialogues, "student")) as server:
        openai.OpenAI(base_url=server.url, api_key="unused").models.list()
    """

    def __init__(self, app, host: str = "127.0.0.1"):
        import socket
        import threading

        import uvicorn

        with socket.socket() as probe:
            probe.bind((host, 0))
            self.port = probe.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://{host}:{self.port}/v1"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
