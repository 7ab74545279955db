"""Property tests for issue 18: nothing a user types or a model writes can hang, crash or corrupt a run.

    python -m pytest tests/test_fuzz.py -q -s                 # fast profile, fixed seed
    python -m pytest tests/test_fuzz.py -q -s -m slow         # the same properties, many more cases

Each property states a contract and generates inputs against it: calculator expressions, answer
text, JSONL lines, and whole files (random bytes, random JSON, random CSV) given to the command line.
The contract: a result, or one `socratic: error:` line with exit status 2; within a time bound;
and nothing written but what the command writes. Every property runs twice: a fast profile
(derandomized, so the same cases each run) and a slow one marked `slow`. `-s` prints how many cases
each tried.
"""

from __future__ import annotations

import contextlib
import json
import os
import string
import time
from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socratic.cli import main
from socratic.core.errors import RecordError, SocraticError
from socratic.core.jsonl import JsonlAppender, read_jsonl, write_jsonl
from socratic.core.records import Prediction
from socratic.text import answers, calculator

PROFILES = {
    "fast": settings(derandomize=True, max_examples=150, deadline=None, database=None),
    "slow": settings(derandomize=False, max_examples=3000, deadline=None, database=None),
}
# A file through the whole command line costs more than an expression: fewer of those.
FILE_EXAMPLES = {"fast": 40, "slow": 1000}
# Bounds per case, in this thread's CPU time: wall time on a loaded CI machine once gave a 1 ms expression
# 0.6 s. A text case takes well under 1 ms and a hang takes minutes.
TEXT_CPU_SECONDS = 0.05
COMMAND_CPU_SECONDS = 2.0


EXITS: Counter[int] = Counter()  # exit statuses of the command-line properties, printed by `run`


def both_profiles(test: Callable) -> Callable:
    return pytest.mark.parametrize("profile", ["fast", pytest.param("slow", marks=pytest.mark.slow)])(test)


def run(
    profile: str, prop: Callable, *strategies: st.SearchStrategy, examples: int | None = None, label: str = ""
) -> int:
    """Run `prop` as a hypothesis property under a profile; returns (and prints) how many cases it tried."""
    tried, slowest = 0, 0.0

    def counted(args: tuple) -> None:
        nonlocal tried, slowest
        tried += 1
        started = time.perf_counter()
        prop(*args)
        slowest = max(slowest, time.perf_counter() - started)

    chosen = PROFILES[profile]
    if examples is not None:
        chosen = settings(chosen, max_examples=examples)
    settings(chosen, suppress_health_check=list(HealthCheck))(given(st.tuples(*strategies))(counted))()
    exits = f", exit status {dict(sorted(EXITS.items()))}" if EXITS else ""
    print(f"\n{prop.__name__}{label} [{profile}]: {tried} cases, slowest {1000 * slowest:.1f} ms{exits}")
    EXITS.clear()
    return tried


# --- the calculator ----------------------------------------------------------------------------------

_number = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(str),
    st.integers(min_value=0, max_value=10**30).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=7).map(lambda d: str(abs(d))),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(0, 999), st.integers(-500, 500)),
    st.sampled_from(["1.0000001", "1.001", "0.5", "9", "1e309", "1e-400", "10", "0", "1", "2"]),
)
_operator = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "×", "÷"])


def _expressions() -> st.SearchStrategy[str]:
    tree = st.recursive(
        _number,
        lambda inner: st.one_of(
            st.builds(lambda a, op, b: f"{a}{op}{b}", inner, _operator, inner),
            st.builds(lambda a: f"({a})", inner),
            st.builds(lambda a: f"-{a}", inner),
            st.builds(lambda a: f"{a}%", inner),
        ),
        max_leaves=12,
    )
    noise = st.text(alphabet=string.printable + "×÷−$%,", max_size=80)
    return st.one_of(tree, tree.map(lambda t: f"${t}"), noise)


def calculator_gives_a_value_or_its_error_in_bounded_time(expression: str) -> None:
    started = time.thread_time()
    try:
        value = calculator.evaluate(expression)
    except calculator.CalculatorError as e:
        assert "\n" not in str(e)
    else:
        assert isinstance(value, Fraction) and abs(value) <= calculator.MAX_MAGNITUDE
        calculator.calculate(expression)  # and it prints
    # What a student writes reaches the calculator as an open or a closed annotation.
    calculator.complete_open_annotation(f"so <<{expression}=")
    for annotation in calculator.find_annotations(f"<<{expression}={expression}>>"):
        assert annotation.correct in (True, False)
    assert time.thread_time() - started < TEXT_CPU_SECONDS


@both_profiles
def test_calculator_contract(profile):
    run(profile, calculator_gives_a_value_or_its_error_in_bounded_time, _expressions())


# --- answers from model text and gold answers from files ---------------------------------------------

_numberish = st.text(alphabet="0123456789.,/-−$%eE +", max_size=300)
_any_text = st.one_of(_numberish, st.text(max_size=200), st.builds(lambda n: "9" * n, st.integers(0, 6000)))


def answers_are_read_or_missing_in_bounded_time(text: str) -> None:
    started = time.thread_time()
    for extract in (answers.extract_number, answers.extract_yes_no, answers.normalize_number):
        found = extract(text)
        assert found is None or isinstance(found, str)
    assert isinstance(answers.normalize_answer(text), str)
    assert answers.answers_match(text, "72") in (True, False)
    try:
        answers.normalize_gold(text)
    except ValueError as e:
        assert "\n" not in str(e)
    assert time.thread_time() - started < TEXT_CPU_SECONDS


@both_profiles
def test_answer_contract(profile):
    run(profile, answers_are_read_or_missing_in_bounded_time, _any_text)


# --- files given to the command line -----------------------------------------------------------------

_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**120), max_value=10**120),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
_json = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
_row = st.fixed_dictionaries(
    {},
    optional={
        "question": st.one_of(st.text(max_size=40), _scalar),
        "answer": _scalar,
        "id": _scalar,
    },
)
_json_row = st.one_of(_row, _json)
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
# Raw JSON text that python's json module writes but JSON does not allow, and other hostile pieces.
_hostile_json = st.sampled_from(
    [
        '{"question": "q", "answer": NaN}',
        '{"question": "q", "answer": Infinity}',
        '{"question": "q", "answer": 1e400}',
        '{"question": "q", "answer": ' + "9" * 5000 + "}",
        '{"question": "\\ud800", "answer": 1}',
        "[" * 5000 + "]" * 5000,
        '{"question": "a\tb", "answer": 1}',
        '{"question": "q", "answer": "' + "7" * 5000 + '"}',
    ]
)


def _jsonl_text(rows: list) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


_jsonl_bytes = st.one_of(
    st.lists(_good_row, min_size=1, max_size=5).map(_jsonl_text).map(str.encode),
    st.lists(st.one_of(_good_row, _json_row), max_size=5).map(_jsonl_text).map(str.encode),
    st.lists(st.one_of(_json_row.map(json.dumps), _hostile_json), max_size=5).map(
        lambda lines: "\n".join(lines).encode()
    ),
    st.binary(max_size=300),
    st.lists(_json_row, min_size=1, max_size=4).map(_jsonl_text).map(str.encode).map(lambda b: b[: len(b) // 2]),
)
_json_bytes = st.one_of(
    st.lists(_good_row, min_size=1, max_size=5).map(json.dumps).map(str.encode),
    st.lists(st.one_of(_good_row, _json_row), max_size=5).map(json.dumps).map(str.encode),
    _json.map(json.dumps).map(str.encode),
    st.lists(st.one_of(_json_row.map(json.dumps), _hostile_json), max_size=4).map(
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


def _one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("socratic: error: ")]
    assert len(errors) == 1, stderr
    assert stderr.rstrip("\n").endswith(errors[0]), stderr  # nothing after it: no traceback
    return errors[0]


def _command_contract(capsys, folder: Path, argv: list[str], named: str) -> int:
    """Run the command; exit 0, or exit 2 with one error line naming the file; nothing new written."""
    before = sorted(os.listdir(folder))
    capsys.readouterr()
    started = time.thread_time()
    status = main(argv)
    seconds = time.thread_time() - started
    _, err = capsys.readouterr()
    assert status in (0, 2), (status, err)
    EXITS[status] += 1
    if status == 2:
        assert named in _one_error_line(err)
    assert sorted(os.listdir(folder)) == before
    assert seconds < COMMAND_CPU_SECONDS
    return status


@pytest.fixture
def fresh_folder(tmp_path):
    """A new empty folder for each generated case (hypothesis reuses the test's own tmp_path)."""
    count = iter(range(10**9))
    return lambda: Path(tmp_path / str(next(count))).resolve()


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
        _command_contract(capsys, folder, argv, named=str(path))

    prop = dataset_file_gives_problems_or_one_error_line
    run(profile, prop, content, st.booleans(), examples=FILE_EXAMPLES[profile], label=f" ({suffix})")


_prediction_row = st.fixed_dictionaries(
    {
        "problem_id": st.one_of(st.sampled_from(["gsm8k/test/0", "gsm8k/test/1", "x", "a/b/c/d"]), _scalar),
        "method": st.one_of(st.just("cot"), _scalar),
        "output": st.one_of(_expressions().map(lambda e: f"<<{e}=3>>3"), _scalar),
        "answer": st.one_of(st.just("3"), _scalar),
    },
    optional={
        "steps": st.one_of(
            st.lists(st.fixed_dictionaries({"question": st.text(max_size=5), "answer": _expressions()}), max_size=3),
            _json,
        ),
        "correct": st.one_of(st.booleans(), _scalar),
        "meta": st.one_of(st.fixed_dictionaries({"finish": st.sampled_from(["length", "answer"])}), _json),
    },
)
# Well-formed predictions whose chains hold whatever arithmetic a student may write.
_good_predictions = st.lists(
    st.tuples(st.integers(0, 50), _expressions(), st.sampled_from(["3", None]), st.booleans()),
    min_size=1,
    max_size=5,
    unique_by=lambda row: row[0],
).map(
    lambda rows: _jsonl_text(
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
    st.lists(_prediction_row, max_size=4).map(_jsonl_text).map(str.encode),
    st.lists(st.one_of(_prediction_row.map(json.dumps), _hostile_json), max_size=4).map(
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
        _command_contract(capsys, folder, ["evaluate", str(path)], named=str(path))

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


# --- config values and command-line options ---------------------------------------------------------------

_config_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.one_of(st.text(max_size=6), st.integers()), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def _stage_options() -> dict[str, list[str]]:
    from socratic.commands import pipeline
    from socratic.core import config

    stages = {name: [o.name for o in config.options(cls)] for name, cls in pipeline.SECTIONS.items()}
    return {**stages, "run": [o.name for o in config.options(pipeline.RunConfig)]}


@both_profiles
def test_any_config_file_is_loaded_or_refused_in_one_line(tmp_path, profile):
    """Random sections, keys and values (of every type, right or wrong) in a TOML config: `load_config`
    gives a PipelineConfig or one SocraticError line, and nothing else escapes."""
    from socratic.commands.pipeline import load_config

    stages = _stage_options()
    path = tmp_path / "run.toml"

    def config_file_gives_a_config_or_one_error_line(entries: list[tuple[str, str, object]]) -> None:
        values: dict = {}
        for section, key, value in entries:
            if value is None:  # TOML has no null
                continue
            if section == "run":
                values[key] = value  # may replace a stage's table (`solve = false`): load_config must refuse it
            else:
                if not isinstance(values.get(section), dict):
                    values[section] = {}
                values[section][key] = value
        path.write_text(_toml(values), encoding="utf-8")
        try:
            load_config(path)
        except SocraticError as e:
            assert "\n" not in str(e) and str(e)

    section = st.sampled_from(sorted(stages))
    entry = section.flatmap(
        lambda s: st.tuples(
            st.just(s), st.one_of(st.sampled_from(stages[s]), st.text(min_size=1, max_size=8)), _config_value
        )
    )
    run(
        profile,
        config_file_gives_a_config_or_one_error_line,
        st.lists(entry, max_size=4),
        examples=FILE_EXAMPLES[profile] * 3,
    )


def _toml(values: dict) -> str:
    """A TOML file of `values` (tables for dicts); values TOML cannot hold are written as strings."""

    def scalar(value) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value) if abs(value) < 2**63 else json.dumps(str(value))
        if isinstance(value, float):
            return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(str(value), repr(value))
        if isinstance(value, list):
            return "[" + ", ".join(scalar(v) for v in value) + "]"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{json.dumps(k)} = {scalar(v)}" for k, v in value.items()) + "}"
        return json.dumps(value)

    top = [f"{json.dumps(k)} = {scalar(v)}" for k, v in values.items() if not isinstance(v, dict) or k == "run"]
    tables = [
        f"[{json.dumps(k)}]\n" + "".join(f"{json.dumps(kk)} = {scalar(vv)}\n" for kk, vv in v.items())
        for k, v in values.items()
        if isinstance(v, dict) and k != "run"
    ]
    return "\n".join(top) + "\n" + "\n".join(tables)


@both_profiles
def test_any_option_value_stops_before_any_work_or_runs(capsys, fresh_folder, profile):
    """A stage command with one option set to a random text: argparse's usage error or one
    `socratic: error:` line, exit 2, before any model is loaded (the inputs named do not exist, so a
    valid value ends at them) and with nothing written."""
    stages = {name: names for name, names in _stage_options().items() if name != "run"}
    missing = {
        "annotate": ["--dataset", "missing.jsonl"],
        "train": ["--chains", "missing.jsonl"],
        "solve": ["--model", "missing-student"],
    }

    def option_gives_one_error_line(stage: str, option: str, value: str) -> None:
        folder = fresh_folder()
        folder.mkdir()
        flag = "--" + option.replace("_", "-")
        argv = [stage, *missing[stage], flag, value, "--out", str(folder / "out")]
        before = sorted(os.listdir(folder))
        capsys.readouterr()
        started = time.thread_time()
        with contextlib.suppress(SystemExit):  # argparse: a bad number or choice, with its usage line
            status = main(argv)
            EXITS[status] += 1
            assert status == 2
            _one_error_line(capsys.readouterr().err)
        assert sorted(os.listdir(folder)) == before
        assert time.thread_time() - started < COMMAND_CPU_SECONDS

    for stage in stages:  # the first command of each stage imports its libraries: not part of the bound
        with contextlib.suppress(SystemExit):
            main([stage, *missing[stage], "--help"])
    stage = st.sampled_from(sorted(stages))
    case = stage.flatmap(lambda s: st.tuples(st.just(s), st.sampled_from(stages[s])))
    text = st.one_of(
        st.sampled_from(["-3", "0", "-1", "1.5", "nan", "inf", "1e400", "two", "", "99999999999999999999"]),
        st.text(alphabet=string.printable, max_size=10).filter(lambda t: not t.startswith("-")),
    )
    run(
        profile,
        option_gives_one_error_line,
        case.map(lambda c: c[0]),
        case.map(lambda c: c[1]),
        text,
        examples=FILE_EXAMPLES[profile] * 2,
    )


# --- issue 35: config depth, state files, serve request bodies ----------------------------------------


def _nested(depth: int, kind: str, leaf: str = "1") -> str:
    """A TOML value nested `depth` deep: arrays, inline tables, or both in turn."""
    opens = {"array": ["["], "table": ["{a="], "both": ["[", "{a="]}[kind]
    chosen = [opens[n % len(opens)] for n in range(depth)]
    closes = {"[": "]", "{a=": "}"}
    return "".join(chosen) + leaf + "".join(closes[o] for o in reversed(chosen))


@both_profiles
def test_any_config_depth_is_loaded_or_refused_in_one_line(tmp_path, profile):
    """A config value nested to any depth, under any key, in any section, or a dotted key of any length:
    a config or one short SocraticError line; a 500-deep array was a RecursionError."""
    from socratic.commands.pipeline import load_config

    stages = _stage_options()
    path = tmp_path / "deep.toml"

    def deep_config_gives_a_config_or_one_error_line(where: tuple[str, str], depth: int, kind: str) -> None:
        section, key = where
        line = ".".join([key] * depth) + " = 1" if kind == "dotted" else f"{key} = {_nested(depth, kind)}"
        path.write_text(line + "\n" if section == "run" else f"[{section}]\n{line}\n", encoding="utf-8")
        try:
            load_config(path)
        except SocraticError as e:
            assert "\n" not in str(e) and len(str(e)) < 1000, str(e)[:1000]  # a value is never echoed whole

    where = st.sampled_from(sorted(stages)).flatmap(lambda s: st.tuples(st.just(s), st.sampled_from(stages[s])))
    run(
        profile,
        deep_config_gives_a_config_or_one_error_line,
        where,
        st.one_of(st.integers(0, 80), st.integers(80, 3000)),
        st.sampled_from(["array", "table", "both", "dotted"]),
        examples=FILE_EXAMPLES[profile],
    )


_STATE_FILES = {  # where a run and a student keep state that the program reads back
    "run.json": "run.json",
    "manifest": "students/unified/manifest.json",
    "trainer state": "students/unified/checkpoints/checkpoint-2/trainer_state.json",
    "student info": "students/unified/socratic.json",
}


def _state_bytes() -> st.SearchStrategy[bytes]:
    """What a damaged state file may hold: truncated good JSON, wrong types and shapes, random bytes."""
    good = json.dumps({"config": {}, "stages": {"annotate": 1.5}, "steps": 2, "global_step": 2, "max_steps": 4})
    json_value = st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)),
        max_leaves=8,
    )
    keys = st.sampled_from(["config", "stages", "steps", "global_step", "max_steps", "role", "format_version"])
    shaped = st.dictionaries(keys, json_value, max_size=4).map(lambda d: json.dumps(d).encode())
    return st.one_of(
        st.integers(0, len(good)).map(lambda n: good[:n].encode()),
        json_value.map(lambda v: json.dumps(v).encode()),
        shaped,
        st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
        st.binary(max_size=60),
    )


@both_profiles
def test_any_state_file_damage_is_reported_in_one_line(capsys, fresh_folder, profile):
    """A run folder whose state file holds anything: `run --status` prints its table (the damaged file
    named in it) or one error line, exit 0 or 2; and so does continuing the run (it stops at run.json
    or its student before any work). It was JSONDecodeError / AttributeError / KeyError."""
    from socratic.commands import pipeline

    config = pipeline.load_config(None)

    def damaged_state_gives_a_table_or_one_error_line(which: str, data: bytes) -> None:
        folder = fresh_folder()
        (folder / "students" / "unified" / "checkpoints" / "checkpoint-2").mkdir(parents=True)
        (folder / "run.json").write_text(json.dumps({"config": config.as_json(), "stages": {}}))
        (folder / _STATE_FILES[which]).write_bytes(data)
        capsys.readouterr()
        status = main(["run", "--out", str(folder), "--status"])
        out, err = capsys.readouterr()
        EXITS[status] += 1
        assert status in (0, 2), err
        if status == 2:
            _one_error_line(err)
        else:
            assert out.startswith("| student |") and err == "", (out, err)
        try:
            pipeline._Record(folder / "run.json", config)
        except SocraticError as e:
            assert "\n" not in str(e) and "run.json is damaged" in str(e)

    run(
        profile,
        damaged_state_gives_a_table_or_one_error_line,
        st.sampled_from(sorted(_STATE_FILES)),
        _state_bytes(),
        examples=FILE_EXAMPLES[profile],
    )


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
