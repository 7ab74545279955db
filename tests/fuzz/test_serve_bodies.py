"""Any body POSTed to a live `serve` gets a well-formed reply, and the server goes on."""

from __future__ import annotations

import json

from hypothesis import strategies as st

from tests.fuzz.properties import EXITS, FILE_EXAMPLES, both_profiles, run


def _request_bodies() -> st.SearchStrategy[bytes]:
    """Chat request bodies of any JSON shape, strings with lone surrogates and control characters, deep
    nesting, long numbers, large sizes, and bytes that are not JSON."""
    text = st.one_of(
        st.text(max_size=30),
        st.sampled_from(["\ud800", "a\udfffb", "\x00\x1b[2J", "7 " * 1500, "What is 2 plus 3?"]),
    )
    leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), text)
    value = st.recursive(
        leaf,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
        max_leaves=10,
    )
    message = st.fixed_dictionaries(
        {}, optional={"role": st.one_of(st.just("user"), value), "content": st.one_of(text, value)}
    )
    chat = st.fixed_dictionaries(
        {},
        optional={
            "model": st.one_of(st.just("student"), value),
            "messages": st.one_of(st.lists(message, max_size=3), value),
            "stream": st.one_of(st.booleans(), value),
            "n": st.one_of(st.just(1), value),
        },
    )
    as_json = chat.map(lambda body: json.dumps(body).encode())  # ensure_ascii: surrogates go as "\ud800"
    return st.one_of(
        as_json,
        as_json.map(lambda body: body.replace(b'"student"', b"NaN", 1)),
        st.integers(1, 200_000).map(lambda n: b'{"model": "student", "messages": ' + b"[" * n + b"]" * n + b"}"),
        st.integers(4000, 6000).map(lambda n: b'{"model": "student", "n": ' + b"9" * n + b"}"),
        st.sampled_from([b'{"pad": "' + b"x" * (5 * 2**20) + b'"}', b"", b"\xff\xfe{}"]),
        st.binary(max_size=100),
    )


@both_profiles
def test_any_request_body_gets_a_well_formed_reply_and_the_server_goes_on(make_tiny_student, profile):
    """Any body POSTed to a live `serve` of a tiny student: a 200 chat completion or a 4xx in OpenAI's
    error shape, never a 500, a hang or a plain-text page; afterwards an innocent request is answered.
    A lone surrogate used to kill the scheduler (every later request hung)."""
    import urllib.error
    import urllib.request

    from socratic.commands.serve import ServerThread, make_app
    from socratic.solving.dialogue import Dialogues
    from socratic.solving.loops import DecodeOptions
    from socratic.solving.students import EngineOptions, StudentOptions

    decode = DecodeOptions(max_new_tokens=4).settings()
    student = StudentOptions(model=str(make_tiny_student("unified"))).student()
    dialogues = Dialogues(student, EngineOptions(engine="llamacpp", threads=1, batch_size=4), decode)

    def post(url: str, body: bytes) -> tuple[int, dict]:
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, _event_or_json(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    with ServerThread(make_app(dialogues, "student")) as server:
        url = f"{server.url}/chat/completions"
        innocent = json.dumps({"model": "student", "messages": [{"role": "user", "content": "2 plus 3?"}]}).encode()

        def body_gets_a_reply_and_the_server_goes_on(body: bytes) -> None:
            status, reply = post(url, body)
            EXITS[status] += 1
            if status == 200:
                assert reply["object"] in ("chat.completion", "chat.completion.chunk"), reply
            else:
                assert 400 <= status < 500, (status, reply)
                assert set(reply["error"]) == {"message", "type", "param", "code"} and reply["error"]["message"]
            assert post(url, innocent)[0] == 200

        run(profile, body_gets_a_reply_and_the_server_goes_on, _request_bodies(), examples=FILE_EXAMPLES[profile])


def _event_or_json(data: bytes) -> dict:
    """A reply's JSON: the body, or for a stream its first event's."""
    if data.startswith(b"data: "):
        return json.loads(data.split(b"\n", 1)[0][len(b"data: ") :])
    return json.loads(data)
