"""Any file given to the command line (datasets as JSONL, JSON or CSV; predictions; any JSONL bytes) is read
or refused in one line, and an output is written whole or refused, whatever is in its way."""

from __future__ import annotations

import contextlib
import json
import string

import pytest
from hypothesis import strategies as st

from socratic.core.errors import RecordError, SocraticError
from socratic.core.jsonl import JsonlAppender, read_jsonl, write_jsonl
from socratic.core.records import Prediction
from tests.fuzz.properties import (
    FILE_EXAMPLES,
    both_profiles,
    command_contract,
    expressions,
    hostile_json,
    json_values,
    jsonl_text,
    run,
    scalar,
)

_row = st.fixed_dictionaries(
    {},
    optional={
        "question": st.one_of(st.text(max_size=40), scalar),
        "answer": scalar,
        "id": scalar,
    },
)
_json_row = st.one_of(_row, json_values)
# Rows a user would write, so that whole files are often valid and the success path runs too.
_words = st.text(alphabet=string.ascii_letters + string.digits + " ?.,/%$éü€", min_size=1, max_size=40)
_good_row = st.fixed_dictionaries(
    {
        "question": _words.filter(str.strip),
        "answer": st.one_of(
            st.integers(-(10**9), 10**9), st.floats(-1e9, 1e9), st.booleans(), _words.filter(str.strip)
        ),
        "id": st.one_of(_words.filter(str.strip), st.integers(0, 10**6)),
    },
)

_jsonl_bytes = st.one_of(
    st.lists(_good_row, min_size=1, max_size=5).map(jsonl_text).map(str.encode),
    st.lists(st.one_of(_good_row, _json_row), max_size=5).map(jsonl_text).map(str.encode),
    st.lists(st.one_of(_json_row.map(json.dumps), hostile_json), max_size=5).map(
        lambda lines: "\n".join(lines).encode()
    ),
    st.binary(max_size=300),
    st.lists(_json_row, min_size=1, max_size=4).map(jsonl_text).map(str.encode).map(lambda b: b[: len(b) // 2]),
)
_json_bytes = st.one_of(
    st.lists(_good_row, min_size=1, max_size=5).map(json.dumps).map(str.encode),
    st.lists(st.one_of(_good_row, _json_row), max_size=5).map(json.dumps).map(str.encode),
    json_values.map(json.dumps).map(str.encode),
    st.lists(st.one_of(_json_row.map(json.dumps), hostile_json), max_size=4).map(
        lambda items: ("[" + ",".join(items) + "]").encode()
    ),
    st.binary(max_size=300),
)
_csv_cell = st.one_of(st.text(max_size=20), st.sampled_from(['"', '""', ",", "\n", "\r", "\x00", "1e400", "NaN"]))


def _csv_text(header: list[str], rows: list[list[str]]) -> bytes:
    lines = [",".join(header)] + [",".join(row) for row in rows]
    return "\n".join(lines).encode("utf-8", "surrogatepass")


_csv_word = st.text(alphabet=string.ascii_letters + string.digits + " ?.%$", min_size=1, max_size=20).filter(str.strip)
_good_csv = st.lists(st.tuples(_csv_word, _csv_word), min_size=1, max_size=5).map(
    lambda rows: ("question,answer\n" + "".join(f"{q},{a}\n" for q, a in rows)).encode()
)
_csv_bytes = st.one_of(
    _good_csv,
    st.builds(
        _csv_text,
        st.sampled_from([["question", "answer"], ["question", "answer", "id"], ["answer"], ["q", "question"]]),
        st.lists(st.lists(_csv_cell, max_size=4), max_size=5),
    ),
    st.just(b"question,answer\nq," + b"8" * 200_000 + b"\n"),
    st.binary(max_size=300),
)


@both_profiles
@pytest.mark.parametrize(
    ("suffix", "content"), [(".jsonl", _jsonl_bytes), (".json", _json_bytes), (".csv", _csv_bytes)]
)
def test_any_dataset_file_is_read_or_refused_in_one_line(capsys, fresh_folder, profile, suffix, content):
    def dataset_file_gives_problems_or_one_error_line(data: bytes, id_field: bool) -> None:
        folder = fresh_folder()
        folder.mkdir()
        path = folder / f"mine{suffix}"
        path.write_bytes(data)
        argv = ["data", "show", "--dataset", str(path), "--json"] + (["--id-field", "id"] if id_field else [])
        command_contract(capsys, folder, argv, named=str(path))

    prop = dataset_file_gives_problems_or_one_error_line
    run(profile, prop, content, st.booleans(), examples=FILE_EXAMPLES[profile], label=f" ({suffix})")


_prediction_row = st.fixed_dictionaries(
    {
        "problem_id": st.one_of(st.sampled_from(["gsm8k/test/0", "gsm8k/test/1", "x", "a/b/c/d"]), scalar),
        "method": st.one_of(st.just("cot"), scalar),
        "output": st.one_of(expressions().map(lambda e: f"<<{e}=3>>3"), scalar),
        "answer": st.one_of(st.just("3"), scalar),
    },
    optional={
        "steps": st.one_of(
            st.lists(st.fixed_dictionaries({"question": st.text(max_size=5), "answer": expressions()}), max_size=3),
            json_values,
        ),
        "correct": st.one_of(st.booleans(), scalar),
        "meta": st.one_of(st.fixed_dictionaries({"finish": st.sampled_from(["length", "answer"])}), json_values),
    },
)
# Well-formed predictions whose chains hold whatever arithmetic a student may write.
_good_predictions = st.lists(
    st.tuples(st.integers(0, 50), expressions(), st.sampled_from(["3", None]), st.booleans()),
    min_size=1,
    max_size=5,
    unique_by=lambda row: row[0],
).map(
    lambda rows: jsonl_text(
        {
            "problem_id": f"gsm8k/test/{n}",
            "method": "cot",
            "steps": [{"question": "", "answer": f"so <<{e}=3>>3"}],
            "output": f"<<{e}=",
            "answer": answer,
            "correct": correct,
        }
        for n, e, answer, correct in rows
    ).encode()
)
_predictions_bytes = st.one_of(
    _good_predictions,
    st.lists(_prediction_row, max_size=4).map(jsonl_text).map(str.encode),
    st.lists(st.one_of(_prediction_row.map(json.dumps), hostile_json), max_size=4).map(
        lambda lines: "\n".join(lines).encode()
    ),
    st.binary(max_size=300),
)


@both_profiles
def test_any_predictions_file_is_scored_or_refused_in_one_line(capsys, fresh_folder, profile):
    def predictions_file_gives_scores_or_one_error_line(data: bytes) -> None:
        folder = fresh_folder()
        folder.mkdir()
        path = folder / "predictions.jsonl"
        path.write_bytes(data)
        command_contract(capsys, folder, ["evaluate", str(path)], named=str(path))

    run(profile, predictions_file_gives_scores_or_one_error_line, _predictions_bytes, examples=FILE_EXAMPLES[profile])


@both_profiles
def test_any_jsonl_bytes_are_records_or_a_record_error(tmp_path, profile):
    path = tmp_path / "chains.jsonl"

    def jsonl_bytes_give_records_or_a_record_error(data: bytes) -> None:
        path.write_bytes(data)
        try:
            for kind in (None, Prediction):
                list(read_jsonl(path, kind))
        except RecordError as e:
            assert str(e).startswith(f"{path}:") and "\n" not in str(e)

    run(
        profile,
        jsonl_bytes_give_records_or_a_record_error,
        st.one_of(_jsonl_bytes, _predictions_bytes),
        examples=FILE_EXAMPLES[profile] * 2,
    )


# --- where outputs go ------------------------------------------------------------------------------

_layout = st.dictionaries(
    st.sampled_from(["a", "b", "a/b", "b/c", "out.jsonl", "a/out.jsonl"]), st.booleans(), max_size=4
)
_output = st.sampled_from(["out.jsonl", "a/out.jsonl", "a/b/out.jsonl", "b", "a/b", "c/d/out.jsonl"])


@both_profiles
def test_outputs_are_written_whole_or_refused_in_one_line(fresh_folder, profile):
    """Files and folders in the way of an output: the records are written, or one `cannot write`
    line names the output; no temporary file is left either way."""

    def output_is_written_or_refused_without_leftovers(layout: dict[str, bool], output: str, append: bool) -> None:
        folder = fresh_folder()
        folder.mkdir()
        for name, is_folder in sorted(layout.items()):
            with contextlib.suppress(OSError):  # a layout may contradict itself: keep what fits
                (folder / name).mkdir(parents=True) if is_folder else (folder / name).write_text("{}\n")
        target = folder / output
        try:
            if append:
                with JsonlAppender(target) as out:
                    out.append({"n": 1})
            else:
                write_jsonl(target, [{"n": 1}])
        except SocraticError as e:
            assert str(e).startswith(f"cannot write {target}: ") and "\n" not in str(e)
        else:
            assert list(read_jsonl(target))[-1] == {"n": 1}
        assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]

    run(profile, output_is_written_or_refused_without_leftovers, _layout, _output, st.booleans())
