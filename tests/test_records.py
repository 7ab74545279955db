"""Records and their JSONL files: round trips, killed writers, and errors that name file, line and field."""

import json
import logging

import pytest

from socratic.errors import RecordError
from socratic.records import (
    Chain,
    JsonlAppender,
    Prediction,
    Problem,
    Step,
    read_jsonl,
    write_jsonl,
)

PROBLEM = Problem(
    id="gsm8k/test/0",
    dataset="gsm8k",
    question="2+3*4?",
    answer="14",
    human_steps=(Step("What is 3*4?", "3*4=<<3*4=12>>12"), Step("What is 2+12?", "<<2+12=14>>14")),
)
CHAIN = Chain(
    problem_id="gsm8k/test/0",
    style="socratic",
    steps=PROBLEM.human_steps,
    final_answer="14",
    correct=True,
    source="teacher:qwen",
    meta={"sample": 2, "tokens": 91},
)
PREDICTION = Prediction(
    problem_id="gsm8k/test/0",
    method="iterative",
    steps=PROBLEM.human_steps,
    output="...",
    answer=None,
    correct=False,
    meta={"why": "no answer"},
)


@pytest.mark.parametrize("record", [PROBLEM, CHAIN, PREDICTION, Step("q", "a")])
def test_round_trip(tmp_path, record):
    path = write_jsonl(tmp_path / "records.jsonl", [record, record])
    assert list(read_jsonl(path, type(record))) == [record, record]


def test_appender_survives_a_killed_writer(tmp_path, caplog):
    path = tmp_path / "chains.jsonl"
    with JsonlAppender(path) as out:
        out.append(CHAIN)
    # A writer killed mid-line leaves a truncated last line without its newline.
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"problem_id": "gsm8k/test/1"})[:15])
    with caplog.at_level(logging.WARNING):
        assert list(read_jsonl(path, Chain)) == [CHAIN]
    assert "truncated last line" in caplog.text
    # Resuming cuts the fragment off instead of gluing the next record onto it.
    with JsonlAppender(path) as out:
        out.append(CHAIN)
    assert list(read_jsonl(path, Chain)) == [CHAIN, CHAIN]
    assert path.read_text(encoding="utf-8").count("\n") == 2


def test_appender_cuts_a_fragment_longer_than_a_block(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"a": 1}) + "\n" + "x" * 200_000, encoding="utf-8")
    with JsonlAppender(path, fsync=True) as out:
        out.append({"b": 2})
    assert list(read_jsonl(path)) == [{"a": 1}, {"b": 2}]


def test_appender_on_a_file_that_is_only_a_fragment(tmp_path):
    path = tmp_path / "fragment.jsonl"
    path.write_text('{"a": ', encoding="utf-8")
    with JsonlAppender(path) as out:
        out.append({"b": 2})
    assert list(read_jsonl(path)) == [{"b": 2}]


def test_malformed_line_in_the_middle_is_an_error_with_its_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2,,}\n{"a": 3}\n', encoding="utf-8")
    with pytest.raises(RecordError, match=r"bad\.jsonl:3: not valid JSON"):
        list(read_jsonl(path))


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        ({"dataset": "d", "question": "q", "answer": "1"}, "id", "missing"),
        ({"id": "x", "dataset": "d", "question": 5, "answer": "1"}, "question", "expected a string, got int"),
        ({"id": "x", "dataset": "d", "question": "q", "answer": True}, "answer", "expected a string, got bool"),
        (
            {"id": "x", "dataset": "d", "question": "q", "answer": "1", "facts": ["a", 2]},
            "facts[1]",
            "expected a string",
        ),
        (
            {"id": "x", "dataset": "d", "question": "q", "answer": "1", "human_steps": [{"question": "q"}]},
            "human_steps[0].answer",
            "missing",
        ),
    ],
)
def test_bad_field_names_file_line_and_field(tmp_path, row, field, reason):
    path = tmp_path / "problems.jsonl"
    path.write_text(
        json.dumps({"id": "ok", "dataset": "d", "question": "q", "answer": "1"}) + "\n" + json.dumps(row) + "\n",
        encoding="utf-8",
    )
    with pytest.raises(RecordError) as error:
        list(read_jsonl(path, Problem))
    assert (error.value.line, error.value.field) == (2, field)
    assert reason in error.value.reason
    assert str(error.value).startswith(f"{path}:2: field '{field}': ")


def test_a_row_that_is_not_an_object(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(RecordError, match="expected a JSON object"):
        list(read_jsonl(path, Chain))


def test_write_is_atomic(tmp_path):
    path = write_jsonl(tmp_path / "out" / "p.jsonl", [PROBLEM])
    assert not path.with_name("p.jsonl.tmp").exists()
    assert list(read_jsonl(path, Problem)) == [PROBLEM]
