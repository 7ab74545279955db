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

A request's decoding fields are honoured, within the server's limits (`serve_requests.RequestOptions`):
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
from dataclasses import dataclass, field

from socratic.commands.serve_requests import RequestError, problem_of, read_body, request_options
from socratic.core.errors import SocraticError
from socratic.engines.base import TOO_LONG
from socratic.solving.dialogue import Dialogues, answer_task, refused, reply
from socratic.solving.loops import Attempt, DecodeOptions, DecodeSettings
from socratic.solving.students import EngineOptions, StudentOptions
from socratic.tasks.base import ANSWER_KINDS
from socratic.text import formats

log = logging.getLogger(__name__)

ENDED_BY_LENGTH = ("length", "max_steps", TOO_LONG)  # reported to clients as finish_reason "length"


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
