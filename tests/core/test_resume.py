"""Saved state is continued only by the settings that made it."""

import pytest

from socratic.core import resume
from socratic.core.errors import SocraticError


def test_the_same_settings_continue_and_others_are_refused(tmp_path):
    state = tmp_path / "predictions.jsonl"
    resume.claim(state, {"method": "unified", "samples": 1}, "predictions")
    state.write_text("{}\n")
    resume.claim(state, {"method": "unified", "samples": 1}, "predictions")
    with pytest.raises(SocraticError, match=r"made with other settings \(method: 'unified', now 'cot'\): delete it"):
        resume.claim(state, {"method": "cot", "samples": 1}, "predictions")
    assert state.read_text() == "{}\n", "nothing is touched"


def test_state_older_than_its_record_is_adopted(tmp_path):
    state = tmp_path / "predictions.jsonl"
    state.write_text("{}\n")
    resume.claim(state, {"method": "cot"}, "predictions")
    assert resume.settings_path(state).is_file()
    with pytest.raises(SocraticError):
        resume.claim(state, {"method": "unified"}, "predictions")


def test_a_new_state_records_its_settings_whatever_an_old_record_said(tmp_path):
    state = tmp_path / "p.jsonl"
    resume.claim(state, {"method": "cot"}, "predictions")
    resume.claim(state, {"method": "unified"}, "predictions")  # no state yet: nothing to protect
    assert '"unified"' in resume.settings_path(state).read_text()
