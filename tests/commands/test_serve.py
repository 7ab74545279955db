"""`socratic serve` on loopback, spoken to with the `openai` client: replies are the dialogue `socratic
ask` prints (so the one `solve` saves), streamed or not; concurrent requests share the engine and
each gets its own reply; bad requests get their 4xx and the server goes on; a client that leaves
mid-stream frees its place; the request's decoding fields (max_tokens, temperature, top_p, seed, stop, n,
usage) are honoured or refused, with the sync and async clients. Fast tier on tiny random students; the
load test on SmolLM2 is slow."""

import io
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from socratic.commands.ask import AskConfig, run_ask
from socratic.commands.serve import ServerThread, make_app
from socratic.core.config import build
from socratic.core.errors import SocraticError
from socratic.core.machine import usable_cores
from socratic.solving.dialogue import Dialogues
from socratic.solving.loops import DecodeOptions
from socratic.solving.students import EngineOptions, StudentOptions
from socratic.tasks import load_task
from socratic.text import formats

FAST = dict(max_new_tokens=24, step_tokens=8, max_steps=2)


class Server(ServerThread):
    """The app of `dialogues` served on loopback, with an `openai` client and raw POSTs for bad bodies."""

    def __init__(self, dialogues: Dialogues, name: str = "student", **options):
        super().__init__(make_app(dialogues, name, **options))
        self.dialogues = dialogues

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url, api_key="unused", max_retries=0, timeout=600)

    def post(self, body: bytes) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"{self.url}/chat/completions", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


def open_dialogues(student, engine="llamacpp", threads=1, batch_size=8, **options) -> Dialogues:
    decode = DecodeOptions(**{**FAST, **options})
    runtime = EngineOptions(engine=engine, threads=threads, batch_size=batch_size)
    return Dialogues(StudentOptions(model=str(student)).student(), runtime, decode.settings())


def ask_printed(student, engine: str, question: str, **options) -> str:
    """What `socratic ask` prints for the question, unmarked (no calculator: nothing to mark)."""
    out = io.StringIO()
    run_ask(
        build(AskConfig, dict(model=str(student), engine=engine, threads=1, **{**FAST, **options})),
        question,
        stdout=out,
    )
    return out.getvalue()


def chat(client: openai.OpenAI, question: str, stream: bool = False):
    messages = [{"role": "system", "content": "ignored"}, {"role": "user", "content": question}]
    if not stream:
        return client.chat.completions.create(model="student", messages=messages)
    return client.chat.completions.create(model="student", messages=messages, stream=True)


def streamed(client: openai.OpenAI, question: str) -> tuple[str, dict, str]:
    text, extra, finish = "", {}, ""
    for piece in chat(client, question, stream=True):
        choice = piece.choices[0]
        text += choice.delta.content or ""
        if choice.finish_reason:
            finish, extra = choice.finish_reason, piece.model_extra["socratic"]
    return text, extra, finish


@pytest.fixture(scope="module")
def unified_server(make_tiny_student):
    """A tiny unified student behind the server (llama.cpp, calculator on), shared by the tests that
    only send it requests, in turn: each leaves it answering for the next (each opened its own, ~0.9 s)."""
    with Server(open_dialogues(make_tiny_student("unified"))) as server:
        yield server


@pytest.mark.parametrize("role", ["unified", "pair"])
def test_replies_are_the_dialogue_ask_prints_streamed_or_not(make_tiny_student, tmp_path, role):
    from tests.commands.test_ask import pair_folder

    student = make_tiny_student("unified") if role == "unified" else pair_folder(make_tiny_student, tmp_path)
    questions = [p.question for p in load_task("gsm8k").load("test", limit=2)]
    printed = [ask_printed(student, "llamacpp", q, calculator=False) for q in questions]
    with Server(open_dialogues(student, calculator=False)) as server:
        client = server.client()
        assert [m.id for m in client.models.list().data] == ["student"]
        for question, expected in zip(questions, printed, strict=True):
            answer = chat(client, question)
            assert answer.choices[0].message.content + "\n" == expected
            steps = answer.model_extra["socratic"]["steps"]
            assert steps and all(set(s) == {"question", "answer"} for s in steps)
            text, extra, finish = streamed(client, question)
            assert text + "\n" == expected
            assert extra["steps"] == steps and finish == answer.choices[0].finish_reason


def test_concurrent_requests_each_get_their_own_reply(unified_server):
    questions = [p.question for p in load_task("gsm8k").load("test", limit=6)]
    client = unified_server.client()
    alone = [chat(client, q).choices[0].message.content for q in questions]
    with ThreadPoolExecutor(len(questions)) as pool:
        together = list(pool.map(lambda q: chat(client, q).choices[0].message.content, questions))
    assert together == alone
    assert len(set(alone)) > 1  # different problems, different replies: a mix-up would show


def test_bad_requests_get_their_error_and_the_server_goes_on(make_tiny_student):
    with Server(open_dialogues(make_tiny_student("unified")), max_problem_chars=5000) as server:
        client = server.client()
        status, body = server.post(b'{"model": "student", "messages": [')
        assert status == 400 and "not valid JSON" in body["error"]["message"]
        status, body = server.post(b'["a list"]')
        assert status == 400 and "JSON object" in body["error"]["message"]
        status, body = server.post(json.dumps({"model": "student", "messages": [{"role": "system"}]}).encode())
        assert status == 400 and "no user message" in body["error"]["message"]
        with pytest.raises(openai.NotFoundError, match="this server serves 'student'"):
            client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "1+1?"}])
        with pytest.raises(openai.BadRequestError, match="at most 5000"):
            chat(client, "7 " * 3000)
        # Under the character limit but longer than the tiny student's 1,024 positions.
        with pytest.raises(openai.BadRequestError, match="does not fit the student's context"):
            chat(client, "7 " * 1500)
        with pytest.raises(openai.BadRequestError, match="does not fit"):
            streamed(client, "7 " * 1500)
        assert chat(client, "What is 2 plus 3?").choices[0].message.content


def test_a_client_that_leaves_mid_stream_frees_its_place(make_tiny_student):
    dialogues = open_dialogues(make_tiny_student("unified"), max_new_tokens=200)
    with Server(dialogues) as server:
        body = {"model": "student", "stream": True, "messages": [{"role": "user", "content": "What is 2 plus 3?"}]}
        request = urllib.request.Request(
            f"{server.url}/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        response = urllib.request.urlopen(request, timeout=60)
        assert response.readline().startswith(b"data: ")  # the stream has begun
        response.close()  # ... and the client goes away
        deadline = time.time() + 30
        while dialogues.busy:
            assert time.time() < deadline, "the abandoned request kept its place"
            time.sleep(0.05)
        assert not dialogues.loop.engine.busy
        assert chat(server.client(), "What is 2 plus 3?").choices[0].message.content


@pytest.mark.slow
def test_32_concurrent_requests_are_all_answered_each_as_alone(make_student):
    """The load test on SmolLM2 (standing in for a unified student): 32 requests at once share the
    llama.cpp engine's batch; each reply is the one the same request gets alone."""
    questions = [p.question for p in load_task("gsm8k").load("test", limit=32)]
    dialogues = open_dialogues(make_student("unified"), threads=usable_cores(), batch_size=32, max_new_tokens=48)
    with Server(dialogues) as server:
        client = server.client()
        alone = [chat(client, q).choices[0].message.content for q in questions]
        with ThreadPoolExecutor(len(questions)) as pool:
            together = list(pool.map(lambda q: chat(client, q).choices[0].message.content, questions))
    assert len(together) == 32 and all(together)
    assert together == alone


# --- issue 35: hostile requests ----------------------------------------------------------------------


class ServerLog:
    """What the server logs, uvicorn's own loggers included (they do not reach the root logger)."""

    def __init__(self, caplog):
        self.caplog = caplog

    def __enter__(self):
        import logging

        self.caplog.set_level(logging.INFO)
        logging.getLogger("uvicorn").addHandler(self.caplog.handler)
        return self

    def __exit__(self, *exc):
        import logging

        logging.getLogger("uvicorn").removeHandler(self.caplog.handler)

    def troubles(self) -> list[str]:
        return [r.getMessage() for r in self.caplog.records if r.exc_info or r.levelname in ("ERROR", "CRITICAL")]


def surrogate_body(model: str = "student", content: str = "\ud800") -> bytes:
    """A chat request whose JSON spells a lone UTF-16 surrogate ("\\ud800"), as a client may send it."""
    return json.dumps({"model": model, "messages": [{"role": "user", "content": content}]}).encode()


@pytest.mark.parametrize("engine", ["llamacpp", "hf"])
def test_a_lone_surrogate_is_its_requests_400_and_the_server_goes_on(make_tiny_student, engine):
    """It used to kill the scheduler (llamacpp: every later request hung) or fail the whole batch (hf: 500
    for it and for an innocent request beside it)."""
    with Server(open_dialogues(make_tiny_student("unified"), engine=engine)) as server:
        status, body = server.post(surrogate_body())
        assert status == 400 and "surrogate" in body["error"]["message"], body
        with ThreadPoolExecutor(2) as pool:  # the bad one and an innocent one at the same time
            bad = pool.submit(server.post, surrogate_body())
            good = pool.submit(chat, server.client(), "What is 2 plus 3?")
            assert bad.result()[0] == 400
            assert good.result().choices[0].message.content


def test_text_no_tokenizer_reads_is_refused_even_when_it_reaches_the_scheduler(unified_server):
    """The check sits where text enters the engines (`Dialogues.add`), not only in the JSON reader."""
    scheduler_input = "caf\udce9"  # what undecodable bytes become with surrogateescape
    with pytest.raises(SocraticError, match="not UTF-8 text"):
        unified_server.dialogues.add(scheduler_input)
    assert chat(unified_server.client(), "What is 2 plus 3?").choices[0].message.content


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"model": "student", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "nested"),
        (b'{"model": "student", "n": ' + b"9" * 5000 + b', "messages": []}', 400, "5,000 digits"),
        (surrogate_body(model="\udcff"), 400, "surrogate"),
        (b'{"model": NaN}', 400, "NaN is not a JSON number"),
        (b'{"model": "\xff"}', 400, "not UTF-8 text"),
        (b'{"pad": "' + b"x" * (5 * 2**20) + b'"}', 413, "larger than"),
    ],
    ids=["100k-deep", "5000-digits", "surrogate-model", "nan", "bytes", "5-MiB"],
)
def test_hostile_bodies_get_a_4xx_in_openais_shape_and_no_traceback(unified_server, caplog, body, status, message):
    server = unified_server
    with ServerLog(caplog) as log:
        got, reply = server.post(body)
        assert got == status and message in reply["error"]["message"], reply
        assert chat(server.client(), "What is 2 plus 3?").choices[0].message.content
        assert not log.troubles()


def test_clients_that_leave_mid_body_are_not_logged(unified_server, caplog):
    """Each used to write ~50 lines (an ASGI traceback ending in ClientDisconnect)."""
    import socket

    server = unified_server
    with ServerLog(caplog) as log:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", server.port)) as raw:
                head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                raw.sendall(f'{head}Content-Length: 1000\r\n\r\n{{"model"'.encode())
        time.sleep(1)
        assert chat(server.client(), "What is 2 plus 3?").choices[0].message.content
        assert not log.troubles(), log.troubles()


class BrokenDialogues:
    """Dialogues with a bug (a stand-in: what breaks is the point, not the model): `add` fails on
    "bug", and with `loop_dies` the scheduler's own loop fails at once."""

    def __init__(self, loop_dies: bool = False):
        from socratic.solving.loops import DecodeOptions

        self.loop_dies, self.added = loop_dies, []
        self.decoding = DecodeOptions().settings()

    def prompt_tokens(self, question: str) -> int:
        return len(question.split())

    @property
    def busy(self) -> bool:
        if self.loop_dies:
            raise RuntimeError("boom")
        return False

    def add(self, question: str, decoding=None) -> int:
        if question == "bug":
            raise TypeError("a bug in add")
        self.added.append(question)
        return len(self.added)

    def cancel(self, i: int) -> None:
        pass


def test_a_bug_for_one_request_is_its_500_and_a_dead_scheduler_answers_at_once(caplog):
    """No request may leave `serve` hanging: a bug while one joins fails that one; a scheduler whose
    loop died answers every later request with a 500 at once instead of never."""
    body = json.dumps({"model": "student", "messages": [{"role": "user", "content": "bug"}]}).encode()
    with Server(BrokenDialogues()) as server:  # type: ignore[arg-type]
        status, reply = server.post(body)
        assert status == 500 and "could not start: TypeError: a bug in add" in reply["error"]["message"]
        assert server.dialogues.added == []
    with Server(BrokenDialogues(loop_dies=True)) as server:  # type: ignore[arg-type]
        status, reply = server.post(body.replace(b'"bug"', b'"What is 2 plus 3?"'))
        assert status == 500 and "scheduler stopped" in reply["error"]["message"]
    assert "the scheduler stopped" in caplog.text


# --- the request's decoding parameters, spoken with the official openai SDK, sync and async ---------

USER = [{"role": "user", "content": "Tom has 3 boxes of 12 eggs and breaks 5. How many eggs are left?"}]


@pytest.fixture(scope="module")
def one_pass_server(make_tiny_student):
    """A tiny unified student behind the server (llama.cpp engine), a budget of 24 tokens a reply."""
    with Server(open_dialogues(make_tiny_student("unified"), calculator=False)) as server:
        yield server


def test_max_tokens_changes_the_replys_length_and_usage_counts_it(one_pass_server):
    client = one_pass_server.client()
    full = client.chat.completions.create(model="student", messages=USER)
    short = client.chat.completions.create(model="student", messages=USER, max_tokens=5)
    newer = client.chat.completions.create(model="student", messages=USER, max_completion_tokens=5)
    assert full.usage.completion_tokens > 5 and full.usage.completion_tokens == full.model_extra["socratic"]["tokens"]
    assert short.usage.completion_tokens == 5 and short.choices[0].finish_reason == "length"
    assert newer.choices[0].message.content == short.choices[0].message.content
    assert len(short.choices[0].message.content) < len(full.choices[0].message.content)
    assert full.choices[0].message.content.startswith(short.choices[0].message.content.split("\nAnswer:")[0])
    tokenizer = one_pass_server.dialogues.counter  # the student's tokenizer, loaded by the first request
    assert full.usage.prompt_tokens == len(tokenizer(formats.problem_prompt(USER[0]["content"]))["input_ids"])
    assert full.usage.total_tokens == full.usage.prompt_tokens + full.usage.completion_tokens
    # Above the server's own budget (24 tokens): the server's budget.
    more = client.chat.completions.create(model="student", messages=USER, max_tokens=10_000)
    assert more.choices[0].message.content == full.choices[0].message.content


def test_stop_strings_end_the_reply_before_them_streamed_or_not(one_pass_server):
    client = one_pass_server.client()
    full = client.chat.completions.create(model="student", messages=USER).choices[0].message.content
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    expected = full[: full.find(stop)]
    cut = client.chat.completions.create(model="student", messages=USER, stop=[stop, "never written"])
    assert cut.choices[0].message.content == expected and cut.choices[0].finish_reason == "stop"
    assert (
        0
        < cut.usage.completion_tokens
        < client.chat.completions.create(model="student", messages=USER).usage.completion_tokens
    )
    pieces, finish = [], None
    for piece in client.chat.completions.create(model="student", messages=USER, stop=stop, stream=True):
        pieces.append(piece.choices[0].delta.content or "")
        finish = piece.choices[0].finish_reason or finish
    assert "".join(pieces) == expected and finish == "stop"
    assert not one_pass_server.dialogues.busy  # the cut reply's decoding stopped


def test_out_of_range_values_are_a_400_naming_the_field(one_pass_server):
    client = one_pass_server.client()
    refused = {
        "temperature": [1e9, -1, "hot"],
        "top_p": [1.5, -0.1],
        "max_tokens": [0, -3, 2.5, True],
        "max_completion_tokens": [0],
        "n": [2, 0],
        "seed": ["x", 1.5],
        "stop": [["a", "b", "c", "d", "e"], [""], 7],
        "presence_penalty": [1.0],
        "logprobs": [True],
    }
    for param, values in refused.items():
        for value in values:
            with pytest.raises(openai.BadRequestError) as error:
                client.chat.completions.create(model="student", messages=USER, extra_body={param: value})
            assert error.value.param == param and error.value.type == "invalid_request_error", (param, value)
            assert error.value.status_code == 400
    status, body = one_pass_server.post(
        json.dumps({"model": "student", "messages": USER, "top_p": float("nan")}).encode()
    )
    # NaN is not JSON: the strict body reader refuses it before the field is looked at (issue 35)
    assert status == 400 and body["error"]["type"] == "invalid_request_error", body
    assert client.chat.completions.create(model="student", messages=USER, n=1, temperature=0).choices


def test_the_async_client_streams_with_usage_and_answers_as_the_sync_one(one_pass_server):
    import asyncio

    async def ask() -> tuple[str, str, object]:
        client = openai.AsyncOpenAI(base_url=one_pass_server.url, api_key="unused", max_retries=0)
        whole = await client.chat.completions.create(model="student", messages=USER, max_tokens=9)
        text, last = "", None
        chunks = await client.chat.completions.create(
            model="student", messages=USER, max_tokens=9, stream=True, stream_options={"include_usage": True}
        )
        async for piece in chunks:
            if piece.choices:
                text += piece.choices[0].delta.content or ""
            last = piece
        return whole.choices[0].message.content, text, (whole.usage, last)

    whole, text, (usage, last) = asyncio.run(ask())
    sync = one_pass_server.client().chat.completions.create(model="student", messages=USER, max_tokens=9)
    assert text == whole == sync.choices[0].message.content
    assert last.choices == [] and last.usage.completion_tokens == usage.completion_tokens == 9


def test_temperature_top_p_and_seed_are_honoured(make_tiny_student):
    # The hf engine seeds each batch by the request's seed: a request decoded alone is reproducible.
    with Server(open_dialogues(make_tiny_student("unified"), engine="hf", calculator=False)) as server:
        client = server.client()

        def reply(**sampling) -> str:
            return client.chat.completions.create(model="student", messages=USER, **sampling).choices[0].message.content

        greedy = reply()
        assert reply(temperature=0, seed=5) == greedy
        hot = {seed: reply(temperature=1.5, seed=seed) for seed in (1, 2, 3)}
        assert reply(temperature=1.5, seed=1) == hot[1]
        assert len(set(hot.values())) > 1 and greedy not in hot.values()
        # top_p that keeps only the likeliest token is greedy decoding, whatever the temperature.
        assert reply(temperature=1.5, top_p=1e-9, seed=1) == greedy


def test_an_iterative_pairs_max_tokens_bounds_all_its_lines(make_tiny_student, tmp_path):
    from tests.commands.test_ask import pair_folder

    pair = pair_folder(make_tiny_student, tmp_path)
    with Server(open_dialogues(pair, calculator=False)) as server:
        client = server.client()
        full = client.chat.completions.create(model="student", messages=USER)
        short = client.chat.completions.create(model="student", messages=USER, max_tokens=10)
    assert full.usage.completion_tokens > 10 >= short.usage.completion_tokens
    assert short.choices[0].finish_reason == "length"
