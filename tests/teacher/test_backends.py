"""The OpenAI-compatible backend under injected faults: retries what can succeed, fails fast otherwise."""

import pytest

from socratic.core.errors import SocraticError
from socratic.teacher.backends import OpenAIBackend, Request, RetryPolicy, TeacherError, TeacherSampling, load_backend
from tests.teacher.fault_server import GOOD_TEXT, FaultServer

REQUEST = Request(
    messages=[{"role": "user", "content": "Problem: 1+1?\n"}], text="Problem: 1+1?\n", stop=("\n\n",), seed=0
)
FAST = RetryPolicy(max_retries=5, first_delay=0.01, max_delay=0.05)


@pytest.mark.parametrize("fault", ["500", "502", "503", "429", "garbage", "truncated", "timeout"])
def test_transient_faults_are_retried(fault):
    with FaultServer([fault, fault, "ok"], delay=2.0) as server:
        backend = OpenAIBackend(server.url, timeout=0.5, retry=FAST)
        [reply] = backend.generate([REQUEST], TeacherSampling())
    assert reply.text == GOOD_TEXT and (reply.tokens_in, reply.tokens_out) == (11, 7)
    assert server.requests == 3


def test_the_served_model_is_found_when_not_named():
    with FaultServer(["ok"]) as server:
        assert OpenAIBackend(server.url, retry=FAST).model_name == "fault-model"


@pytest.mark.parametrize("status", ["400", "401", "404"])
def test_client_errors_fail_at_once(status):
    with FaultServer([status]) as server:
        backend = OpenAIBackend(server.url, "fault-model", retry=FAST)
        with pytest.raises(TeacherError, match=f"the server refused the request: HTTP {status}"):
            backend.generate([REQUEST], TeacherSampling())
    assert server.requests == 1


def test_persistent_faults_give_up_with_the_last_error():
    with FaultServer(["500"]) as server:
        backend = OpenAIBackend(server.url, "fault-model", retry=RetryPolicy(max_retries=2, first_delay=0.01))
        with pytest.raises(TeacherError, match="gave up after 3 attempts: HTTP 500"):
            backend.generate([REQUEST], TeacherSampling())
    assert server.requests == 3


def test_nothing_listening():
    backend = OpenAIBackend("http://127.0.0.1:9/v1", "m", timeout=1, retry=RetryPolicy(max_retries=1, first_delay=0.01))
    with pytest.raises(TeacherError, match="APIConnectionError"):
        backend.generate([REQUEST], TeacherSampling())


def test_unknown_teacher_spec():
    with pytest.raises(SocraticError, match="unknown teacher 'gpt4'"):
        load_backend("gpt4")


@pytest.mark.parametrize(
    ("behaviour", "text", "tokens"),
    [
        ("null-usage", GOOD_TEXT, (0, 0)),
        ("odd-usage", GOOD_TEXT, (0, 0)),
        ("null-text", "", (11, 7)),
        ("odd-text", "", (11, 7)),
    ],
)
def test_replies_with_null_or_odd_fields_are_read_not_crashed_on(behaviour, text, tokens):
    with FaultServer([behaviour]) as server:
        [reply] = OpenAIBackend(server.url, "fault-model", retry=FAST).generate([REQUEST], TeacherSampling())
    assert (reply.text, (reply.tokens_in, reply.tokens_out), reply.finish_reason) == (text, tokens, "stop")
    assert server.requests == 1


def test_an_hf_teacher_by_hub_id_loads_from_the_cache(hub):
    backend = load_backend("hf:tiny-org/tiny-llama", batch_size=2)
    assert backend.model_name == "tiny-org/tiny-llama"  # named by its id, not its snapshot's commit
    reply = backend.generate([REQUEST], TeacherSampling(max_tokens=3))[0]
    assert reply.tokens_out > 0
    with pytest.raises(SocraticError, match="nor a hub model in the cache"):
        load_backend("hf:tiny-org/absent")
