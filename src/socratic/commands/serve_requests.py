"""What a chat request of `socratic serve` may ask, read and checked as OpenAI checks it: the body
(strict JSON, at most `MAX_BODY_BYTES`), the problem (its last user message), and the decoding
fields (`RequestOptions`). Anything else is a `RequestError`: a 4xx in OpenAI's error shape naming
the field, for this request alone.

    python -c "from socratic.commands.serve_requests import request_options as r; print(r({'top_p': 0.9}))"
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from socratic.core.jsonl import BadJson, parse_json
from socratic.engines import Sampling
from socratic.solving.loops import DecodeSettings

# The largest request body read: a chat request with a problem of --max-problem-chars and some history
# is a few kB; bodies are read up to this and refused past it (413) rather than held in memory whole.
MAX_BODY_BYTES = 4 * 2**20


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


def message_text(content: Any) -> str:
    """A message's text: a string, or OpenAI's list of parts of which the text ones count."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if all(isinstance(p, str) for p in parts):
            return "\n".join(parts)  # type: ignore[arg-type]
    raise RequestError(400, "a message's 'content' must be a string or a list of text parts")
