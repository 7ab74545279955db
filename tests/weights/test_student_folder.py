"""A student folder: its socratic.json is read back as written, older folders (`mode`) still read, and
broken ones give one clear line; the latest checkpoint is found by number."""

import json

import pytest

from socratic.core.errors import SocraticError
from socratic.text import formats
from socratic.weights import student_folder
from socratic.weights.student_folder import StudentInfo


def test_info_round_trips(tmp_path):
    info = StudentInfo(role="qg", base_model="smollm2-135m", data_hash="abc", examples=3, trained_for={"epochs": 1.0})
    student_folder.write_info(tmp_path, info)
    assert student_folder.read_info(tmp_path) == info
    assert not list(tmp_path.glob("*.tmp"))


def test_folders_written_before_role_was_the_key_still_read(tmp_path):
    old = {"mode": "unified", "format_version": formats.FORMAT_VERSION, "base_model": "smollm2-135m", "lora_r": None}
    (tmp_path / "socratic.json").write_text(json.dumps(old))
    assert student_folder.read_info(tmp_path).role == "unified"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "has no socratic.json: was it written by `socratic train`"),
        ("[1, 2]", "expected a JSON object, found list"),
        ("{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (json.dumps({"role": "qa", "format_version": 0, "base_model": "m"}), "retrain it"),
        (json.dumps({"format_version": formats.FORMAT_VERSION, "base_model": "m"}), "'role' is missing"),
    ],
)
def test_a_broken_info_file_is_one_clear_line(tmp_path, content, message):
    if isinstance(content, bytes):
        (tmp_path / "socratic.json").write_bytes(content)
    elif content is not None:
        (tmp_path / "socratic.json").write_text(content)
    with pytest.raises(SocraticError, match=message):
        student_folder.read_info(tmp_path)


def test_weights_are_required_to_solve(tmp_path):
    with pytest.raises(SocraticError, match=r"has no model\.safetensors: its training did not finish"):
        student_folder.require_weights(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    student_folder.require_weights(tmp_path)


def test_the_latest_complete_checkpoint_is_found_by_number(tmp_path):
    assert student_folder.latest_checkpoint(tmp_path) is None
    for step, complete in ((2, True), (10, True), (12, False)):
        folder = student_folder.checkpoints_folder(tmp_path) / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    assert student_folder.latest_checkpoint(tmp_path).name == "checkpoint-10", "by number, not name; 12 is unfinished"
