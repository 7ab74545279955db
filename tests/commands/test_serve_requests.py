"""A chat request's fields, read as OpenAI reads them (`serve_requests`), without a server: the budget a
request asks never exceeds the server's, and a field out of range is a 400 naming it."""

import pytest

from socratic.commands.serve_requests import RequestError, problem_of, request_options
from socratic.engines import Sampling
from socratic.solving.loops import DecodeOptions


def test_a_request_budget_lowers_the_servers_and_never_raises_it():
    server = DecodeOptions(max_new_tokens=64, step_tokens=8, max_steps=4).settings()
    lower = request_options({"max_tokens": 16}).decoding(server)
    assert (lower.decode.max_new_tokens, lower.max_tokens) == (16, 16)
    assert lower.decode.step_tokens == 8 and lower.decode.max_steps == 4  # the other options are the server's
    higher = request_options({"max_completion_tokens": 1000}).decoding(server)
    assert (higher.decode.max_new_tokens, higher.max_tokens) == (64, 1000)  # the loop's own limits still hold
    assert request_options({}).decoding(server) == server


def test_sampling_fields_replace_only_what_they_name():
    server = DecodeOptions().settings(Sampling(0.5, 7))
    assert request_options({"temperature": 0}).decoding(server).sampling == Sampling(0.0, 7, 1.0)
    assert request_options({"seed": 3, "top_p": 0.9}).decoding(server).sampling == Sampling(0.5, 3, 0.9)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 8, "max_completion_tokens": 9}, "max_completion_tokens"),
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": float("nan")}, "top_p"),
        ({"n": 2}, "n"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stream": "yes"}, "stream"),
    ],
)
def test_a_field_out_of_range_is_a_400_naming_it(body, param):
    with pytest.raises(RequestError) as error:
        request_options(body)
    assert (error.value.status, error.value.param) == (400, param)


def test_the_problem_is_the_last_user_message():
    messages = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "x"}]
    messages.append({"role": "user", "content": [{"type": "text", "text": "Tom has 3"}]})
    assert problem_of({"model": "m", "messages": messages}, "m", 100) == "Tom has 3"
    with pytest.raises(RequestError, match="does not exist") as error:
        problem_of({"model": "other", "messages": messages}, "m", 100)
    assert error.value.status == 404
    with pytest.raises(RequestError, match="at most 5") as error:
        problem_of({"model": "m", "messages": messages}, "m", 5)
