"""Any config file (sections, keys, values of any type, nesting of any depth) is loaded or refused in one
line, and any option value stops a stage before any work, with nothing written."""

from __future__ import annotations

import contextlib
import json
import os
import string

from hypothesis import strategies as st

from socratic.cli import main
from socratic.core.errors import SocraticError
from tests.bounds import cpu_seconds_under
from tests.fuzz.properties import COMMAND_CPU_SECONDS, EXITS, FILE_EXAMPLES, both_profiles, one_error_line, run

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
        with cpu_seconds_under(COMMAND_CPU_SECONDS), contextlib.suppress(SystemExit):
            # SystemExit: argparse refuses a bad number or choice, with its usage line
            status = main(argv)
            EXITS[status] += 1
            assert status == 2
            one_error_line(capsys.readouterr().err)
        assert sorted(os.listdir(folder)) == before

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
