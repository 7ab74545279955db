"""Damage to any state file a run or a student keeps (run.json, manifests, trainer state, student info) is
reported in one line, by `run --status` and by continuing the run."""

from __future__ import annotations

import json

from hypothesis import strategies as st

from socratic.cli import main
from socratic.core.errors import SocraticError
from tests.fuzz.properties import EXITS, FILE_EXAMPLES, both_profiles, one_error_line, run

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
            one_error_line(err)
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
