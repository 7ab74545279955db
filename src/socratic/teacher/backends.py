"""Teacher backends: one small interface, three real engines.

    socratic annotate --teacher openai:http://127.0.0.1:8080/v1#qwen --dataset svamp --limit 20
    socratic annotate --teacher llamacpp:qwen2.5-coder-1.5b --dataset svamp --limit 20
    socratic annotate --teacher hf:./my-model --dataset svamp --limit 20

A backend has a `model_name`, a `batch_size` (how many requests one `generate` call takes), whether
it is `thread_safe` (may be called from several threads at once, for `--concurrency`), and
`generate(requests) -> replies`. Each request is one sample of one problem; its `seed` makes a
sample reproducible where the engine supports seeds.

- `openai:<base_url>[#model]` — any OpenAI-compatible server (vLLM, SGLang, llama.cpp's server,
  Ollama, hosted APIs). The API key comes from $OPENAI_API_KEY (any string for local servers).
  Timeouts, connection errors, 429 and 5xx are retried with exponential backoff; other errors
  (400, 401, 404) fail at once with the server's message.
- `llamacpp:<file.gguf or model name>` — llama.cpp in this process: no server to start; up to
  `--concurrency` replies decoded at once, the shared few-shot prefix evaluated once
  (`teacher/llamacpp.py`).
- `hf:<folder or model name>` — a Hugging Face causal LM with `transformers`, batched.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from socratic.core.errors import SocraticError
from socratic.teacher.protocol import Backend, Reply, Request, Streaming, TeacherError, TeacherSampling

log = logging.getLogger(__name__)

__all__ = [  # (the records of protocol.py are re-exported: callers import them from here)
    "TEACHER_HELP",
    "Backend",
    "HFBackend",
    "OpenAIBackend",
    "Reply",
    "Request",
    "RetryPolicy",
    "Streaming",
    "TeacherError",
    "TeacherSampling",
    "load_backend",
]


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    first_delay: float = 1.0  # seconds; doubles each retry, with jitter
    max_delay: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.first_delay * 2**attempt) * random.uniform(0.5, 1.0)


class OpenAIBackend:
    """Any OpenAI-compatible HTTP server, through the `openai` client (its own retries switched off)."""

    batch_size = 1
    thread_safe = True

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        endpoint: str = "chat",
        timeout: float = 120.0,
        retry: RetryPolicy | None = None,
    ):
        import openai

        assert endpoint in ("chat", "completion"), f"endpoint must be chat or completion, not {endpoint!r}"
        self._openai = openai
        self.client = openai.OpenAI(
            base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "not-needed"), timeout=timeout, max_retries=0
        )
        self.endpoint = endpoint
        self.retry = retry or RetryPolicy()
        self.model_name = model or self._only_served_model(base_url)

    def _only_served_model(self, base_url: str) -> str:
        try:
            served = [m.id for m in self._call(self.client.models.list)]
        except TeacherError as e:
            raise TeacherError(
                f"cannot list the models of {base_url} ({e}); name one: openai:{base_url}#MODEL"
            ) from None
        if len(served) != 1:
            raise TeacherError(
                f"{base_url} serves {len(served)} models ({', '.join(served[:5])}); name one: openai:{base_url}#MODEL"
            )
        return served[0]

    def generate(self, requests: Sequence[Request], sampling: TeacherSampling) -> list[Reply]:
        return [self._one(request, sampling) for request in requests]

    def _one(self, request: Request, sampling: TeacherSampling) -> Reply:
        started = time.perf_counter()
        common = dict(
            model=self.model_name,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_tokens,
            seed=request.seed,
        )
        if self.endpoint == "chat":
            response = self._call(self.client.chat.completions.create, messages=request.messages, **common)
            choice = _first_choice(response)
            text = choice.message.content if choice.message is not None else None
        else:
            response = self._call(
                self.client.completions.create, prompt=request.text, stop=list(request.stop), **common
            )
            choice = _first_choice(response)
            text = choice.text
        usage = getattr(response, "usage", None)
        return Reply(
            text=_text(text),
            finish_reason=_text(choice.finish_reason) or "stop",
            tokens_in=_token_count(usage, "prompt_tokens"),
            tokens_out=_token_count(usage, "completion_tokens"),
            seconds=time.perf_counter() - started,
        )

    def _call(self, method: Any, **kwargs: Any) -> Any:
        errors = self._openai
        # Worth retrying: the server is slow, busy, restarting, or a proxy mangled its reply
        # (a 200 whose body is not JSON, or is cut off, surfaces as a ValueError or a non-object).
        retryable = (
            errors.APITimeoutError,
            errors.APIConnectionError,
            errors.RateLimitError,
            errors.InternalServerError,
            errors.APIResponseValidationError,
            _GarbageReply,
            ValueError,
        )
        for attempt in range(self.retry.max_retries + 1):
            try:
                response = method(**kwargs)
                if isinstance(response, str | bytes) or response is None:
                    raise _GarbageReply(f"the server's reply is not JSON: {str(response)[:80]!r}")
                return response
            except errors.APIStatusError as e:
                if not isinstance(e, retryable):  # 4xx other than 429: retrying will not help
                    raise TeacherError(f"the server refused the request: {_describe(e)}") from None
                error = e
            except retryable as e:
                error = e
            if attempt == self.retry.max_retries:
                raise TeacherError(f"gave up after {attempt + 1} attempts: {_describe(error)}")
            delay = self.retry.delay(attempt)
            log.info("teacher request failed (%s); retry %d in %.1f s", _describe(error), attempt + 1, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")


class _GarbageReply(Exception):
    pass


def _first_choice(response: Any) -> Any:
    choices = getattr(response, "choices", None)
    if not choices:
        raise TeacherError("the server's reply has no choices")
    return choices[0]


def _text(value: Any) -> str:
    """A reply's text field; a server may send null (or, broken, a non-string) where text belongs."""
    return value if isinstance(value, str) else ""


def _token_count(usage: Any, name: str) -> int:
    """A token count from a reply's `usage`, or 0 where the server sends none, null or nonsense:
    the counts are for the cost report and must not stop a run."""
    value = usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _describe(error: Exception) -> str:
    status = getattr(error, "status_code", None)
    text = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
    return f"HTTP {status}: {text}" if status else f"{type(error).__name__}: {text}"


class HFBackend:
    """A Hugging Face causal LM, batched with left padding; chat template when the model has one."""

    thread_safe = False

    def __init__(self, folder: str, batch_size: int = 8, name: str | None = None, threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.model_name = name or os.path.basename(os.path.normpath(folder))  # a hub id's folder is a commit
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()

    def _prompt(self, request: Request) -> str:
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(request.messages, tokenize=False, add_generation_prompt=True)
        return request.text

    def generate(self, requests: Sequence[Request], sampling: TeacherSampling) -> list[Reply]:
        started = time.perf_counter()
        batch = self.tokenizer(
            [self._prompt(r) for r in requests],
            return_tensors="pt",
            padding=True,
            add_special_tokens=not self.tokenizer.chat_template,
        ).to(self.model.device)
        self.torch.manual_seed(requests[0].seed)
        sample = sampling.temperature > 0
        with self.torch.no_grad():
            output = self.model.generate(
                **batch,
                max_new_tokens=sampling.max_tokens,
                do_sample=sample,
                pad_token_id=self.tokenizer.pad_token_id,
                stop_strings=None if self.tokenizer.chat_template else list(requests[0].stop),
                tokenizer=self.tokenizer,
                **({"temperature": sampling.temperature, "top_p": sampling.top_p} if sample else {}),
            )
        new = output[:, batch.input_ids.shape[1] :]
        seconds = (time.perf_counter() - started) / len(requests)
        replies = []
        for i, tokens in enumerate(new):
            real = tokens[tokens != self.tokenizer.pad_token_id]
            text = self.tokenizer.decode(real, skip_special_tokens=True)
            for stop in requests[i].stop if not self.tokenizer.chat_template else ():
                text = text.split(stop, 1)[0]
            finish = "length" if len(real) >= sampling.max_tokens else "stop"
            replies.append(
                Reply(
                    text=text,
                    finish_reason=finish,
                    tokens_in=int(batch.attention_mask[i].sum()),
                    tokens_out=len(real),
                    seconds=seconds,
                )
            )
        return replies


TEACHER_HELP = (
    "human (the dataset's own decompositions), shipped (chains a teacher wrote once, shipped with socratic: "
    "SVAMP's first 300 training problems by Qwen2.5-Coder-1.5B), "
    "openai:<base_url>[#model] (any OpenAI-compatible server), "
    "llamacpp:<file.gguf or model name> (in-process llama.cpp), hf:<folder, model name or hub id> (transformers), "
    "or a model name from `socratic models list` (run with llama.cpp)"
)


def load_backend(
    teacher: str,
    endpoint: str = "chat",
    timeout: float = 120.0,
    batch_size: int = 8,
    retry: RetryPolicy | None = None,
    concurrency: int = 4,
    threads: int | None = None,
) -> Backend:
    """The backend for a `--teacher` argument (anything but `human` and `shipped`)."""
    from socratic.teacher.llamacpp import LlamaCppBackend
    from socratic.weights import models

    kind, _, target = teacher.partition(":")
    if kind == "openai" and target:
        base_url, _, model = target.partition("#")
        return OpenAIBackend(base_url, model or None, endpoint=endpoint, timeout=timeout, retry=retry)
    if kind == "llamacpp" and target:
        return LlamaCppBackend(str(models.resolve(target, want="gguf")), concurrency=concurrency, n_threads=threads)
    if kind == "hf" and target:
        return HFBackend(str(models.resolve(target, want="hf")), batch_size=batch_size, name=target, threads=threads)
    if teacher in models.MODELS:
        return LlamaCppBackend(str(models.resolve(teacher, want="gguf")), concurrency=concurrency, n_threads=threads)
    raise SocraticError(f"unknown teacher '{teacher}': use {TEACHER_HELP}")
