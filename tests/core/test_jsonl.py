"""Records and their JSONL files: round trips, killed writers, and errors that name file, line and field."""

import errno
import json
import logging
import os
import subprocess
import sys
import time

import pytest

from socratic.core import jsonl
from socratic.core.errors import RecordError, SocraticError
from socratic.core.jsonl import JsonlAppender, read_jsonl, write_atomic, write_jsonl
from socratic.core.records import Chain, Prediction, Problem, Step

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
    assert os.listdir(path.parent) == ["p.jsonl"]
    assert list(read_jsonl(path, Problem)) == [PROBLEM]


# --- what the bytes of a file can hold (issue 18) ---------------------------------------------------


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        (b'{"a": 1}\n{"a": "\xff\xfe"}\n', 2, r"not UTF-8 text \(byte 0xff at column 8\)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\n", 1, "not UTF-8 text"),
        (b'{"a": 1}\n{"a": NaN}\n', 2, r"not valid JSON \(NaN is not a JSON number\)"),
        (b'{"a": -Infinity}\n', 1, "-Infinity is not a JSON number"),
        (b'{"a": 1e400}\n', 1, r"number out of range: 1e400"),
        (b'{"a": ' + b"9" * 5000 + b"}\n", 1, "a number with 5,000 digits"),
        (b"[" * 100_000 + b"]" * 100_000 + b"\n", 1, "nested too deeply"),
        (b'{"a": "x\ty"}\n', 1, r"Invalid control character at column 9\)"),  # not "at at column"
        (b"{}\n[1]\n", 2, "expected a JSON object, got list"),
    ],
    ids=["utf8", "binary", "nan", "infinity", "1e400", "5000-digits", "nested", "control", "list"],
)
def test_bad_bytes_and_bad_json_name_their_line(tmp_path, content, line, reason):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(content)
    with pytest.raises(RecordError, match=reason) as error:
        list(read_jsonl(path))
    assert error.value.line == line and "\n" not in str(error.value)


def test_a_byte_order_mark_and_windows_newlines_are_fine(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n{"a": 2}\r\n')
    assert list(read_jsonl(path)) == [{"a": 1}, {"a": 2}]


def test_a_killed_writer_cut_inside_a_utf8_character_is_a_truncated_line(tmp_path, caplog):
    path = tmp_path / "chains.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "caf' + "é".encode()[:1])
    with caplog.at_level(logging.WARNING):
        assert list(read_jsonl(path)) == [{"a": 1}]
    assert "truncated last line" in caplog.text


# --- outputs that cannot be written ------------------------------------------------------------------


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [PROBLEM])

    def records():
        yield PROBLEM
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(SocraticError, match=r"^cannot write .*p\.jsonl: No space left on device$"):
        write_jsonl(path, records())
    assert os.listdir(tmp_path) == ["p.jsonl"]
    assert list(read_jsonl(path, Problem)) == [PROBLEM]

    def interrupted():
        yield "half a file"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, interrupted())
    assert os.listdir(tmp_path) == ["p.jsonl"]


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ("folder", "Is a directory"),
        ("file/p.jsonl", "{tmp}/file is a file, not a folder"),
        ("file/deeper/p.jsonl", "{tmp}/file is a file, not a folder"),
    ],
)
def test_outputs_in_the_way_are_one_line_errors(tmp_path, output, reason):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    for write in (lambda p: write_jsonl(p, [PROBLEM]), lambda p: JsonlAppender(p).__enter__()):
        with pytest.raises(SocraticError) as error:
            write(tmp_path / output)
        assert str(error.value) == f"cannot write {tmp_path / output}: {reason.format(tmp=tmp_path)}"
    assert sorted(os.listdir(tmp_path)) == ["file", "folder"] and os.listdir(tmp_path / "folder") == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_a_one_line_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    with pytest.raises(SocraticError, match="Permission denied"):
        write_jsonl(folder / "p.jsonl", [PROBLEM])
    with pytest.raises(SocraticError, match="Permission denied"):
        JsonlAppender(folder / "p.jsonl").__enter__()


def test_a_full_disk_while_appending_is_a_one_line_error():
    with pytest.raises(SocraticError, match=r"^cannot write /dev/full: No space left on device$"):  # noqa: SIM117
        with JsonlAppender("/dev/full") as out:
            out.append(PROBLEM)


# --- two writers, one output -------------------------------------------------------------------------

_HOLD = """
import sys, time
from socratic.core.jsonl import JsonlAppender
with JsonlAppender(sys.argv[1]) as out:
    out.append({"writer": "other"})
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_a_second_writer_of_the_same_file_fails_at_once(tmp_path):
    path = tmp_path / "predictions.jsonl"
    with JsonlAppender(path) as first:
        first.append({"writer": 1})
        started = time.perf_counter()
        with pytest.raises(SocraticError, match=r"predictions\.jsonl is being written by another process"):
            JsonlAppender(path).__enter__()
        # Not a speed target: a writer that retried would take seconds (one that waited, forever). The
        # bound was 0.1 s, below one garbage collection in a worker that holds torch (0.11-0.18 s).
        assert time.perf_counter() - started < 2
        first.append({"writer": 1})
    with JsonlAppender(path) as again:  # released when the first one closed
        again.append({"writer": 2})
    assert list(read_jsonl(path)) == [{"writer": 1}, {"writer": 1}, {"writer": 2}]


def test_a_second_process_writing_the_same_file_fails_and_adds_nothing(tmp_path):
    path = tmp_path / "predictions.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    other = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert other.stdout.readline() == "locked\n"
        with pytest.raises(SocraticError, match="being written by another process"):
            JsonlAppender(path).__enter__()
        # Nor does our attempt cut the other writer's line short while it is being written.
        assert list(read_jsonl(path)) == [{"writer": "other"}]
    finally:
        other.communicate("\n", timeout=10)
    assert other.returncode == 0
    with JsonlAppender(path) as out:
        out.append({"writer": "us"})
    assert list(read_jsonl(path)) == [{"writer": "other"}, {"writer": "us"}]


# --- issue 35: depth limits, TOML, state files ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[" * 65 + "]" * 65, "nested more than 64 levels deep"),
        ('{"a": ' * 65 + "1" + "}" * 65, "nested more than 64 levels deep"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_json_nested_past_the_limit_is_refused(text, reason):
    with pytest.raises(jsonl.BadJson, match=reason):
        jsonl.parse_json(text)
    assert jsonl.parse_json("[" * 64 + "]" * 64)  # at the limit: read


def test_toml_is_read_with_the_same_refusals():
    assert jsonl.parse_toml('a = [[1]]\n[b]\nc = "d"\n', "f.toml") == {"a": [[1]], "b": {"c": "d"}}
    for text, reason in [
        ("a = " + "[" * 500 + "]" * 500, r"f\.toml: not valid TOML \(nested too deeply\)"),
        ("a = " + "[" * 70 + "]" * 70, r"f\.toml: not valid TOML \(nested more than 64 levels deep\)"),
        ('a = "\\ud800"', r"f\.toml: not valid TOML: "),  # tomllib itself refuses a surrogate escape
        ("a = [", r"f\.toml: not valid TOML: "),
    ]:
        with pytest.raises(SocraticError, match=reason):
            jsonl.parse_toml(text, "f.toml")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"a": ', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"7", "expected a JSON object, found int"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b"\xc3", "not UTF-8 text"),
        (b"[" * 100 + b"]" * 100, "nested more than 64"),
    ],
)
def test_a_damaged_state_file_is_one_line_naming_it_and_what_to_do(tmp_path, content, reason):
    state = tmp_path / "run.json"
    state.write_bytes(content)
    with pytest.raises(SocraticError, match=rf"^{tmp_path}/run\.json is damaged \(.*{reason}.*\): delete it$"):
        jsonl.read_state(state, "delete it")
    state.write_text('{"stages": {}}')
    assert jsonl.read_state(state, "delete it") == {"stages": {}}
    with pytest.raises(SocraticError, match=r"is damaged \(14 bytes, more than such a file ever holds\)"):
        jsonl.read_state(state, "delete it", max_bytes=10)
