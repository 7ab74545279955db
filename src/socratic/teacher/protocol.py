"""What a teacher backend is: requests in, replies out (`Backend`), or replies as each ends
(`Streaming`), and the records they exchange. The backends are in `backends.py` and `llamacpp.py`."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from socratic.core.errors import SocraticError


@dataclass(frozen=True)
class Request:
    messages: list[dict[str, str]]  # the prompt as chat messages ...
    text: str  # ... and as one plain text, for completion endpoints and models without a chat template
    stop: tuple[str, ...]  # where a plain-text completion must stop
    seed: int


@dataclass(frozen=True)
class TeacherSampling:
    """How the teacher samples a reply and how long it may be (the students' engines have their own
    `engines.Sampling`, without a length: their budgets are the loops' settings)."""

    temperature: float = 0.0
    max_tokens: int = 384
    top_p: float = 1.0


@dataclass(frozen=True)
class Reply:
    text: str
    finish_reason: str  # "stop", or "length" when max_tokens cut it off
    tokens_in: int
    tokens_out: int
    seconds: float


class TeacherError(SocraticError):
    """A request that failed for good (after retries, or at once for errors retrying cannot fix)."""


class Backend(Protocol):
    model_name: str
    batch_size: int
    thread_safe: bool

    def generate(self, requests: Sequence[Request], sampling: TeacherSampling) -> list[Reply]: ...


@runtime_checkable
class Streaming(Protocol):
    """A backend that decodes many requests at once itself (`teacher.llamacpp.LlamaCppBackend`):
    (index of the request, its reply or why it failed) as each ends; none starts once `stop` is set."""

    model_name: str

    def stream(
        self, requests: Sequence[Request], sampling: TeacherSampling, stop: threading.Event | None = None
    ) -> Iterator[tuple[int, Reply | TeacherError]]: ...
