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
        (b"\xff\xfe\x00", "not UTF-8 text"),
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


def test_weights_are_required_to_solve(tmp_path, tiny_model):
    with pytest.raises(SocraticError, match=r"has no model\.safetensors: its training did not finish"):
        student_folder.require_weights(tmp_path)
    (tmp_path / "model.safetensors").write_bytes((tiny_model / "model.safetensors").read_bytes())
    with pytest.raises(SocraticError, match=r"has no config\.json beside its weights: copy the whole"):
        student_folder.require_weights(tmp_path)
    (tmp_path / "config.json").write_bytes((tiny_model / "config.json").read_bytes())
    student_folder.require_weights(tmp_path)


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (lambda data: data[: len(data) // 2], r"bytes where its header says [\d,]+: cut short"),
        (lambda data: data[:5], "shorter than a header"),
        (lambda data: b"", "shorter than a header"),
        (lambda data: (2**40).to_bytes(8, "little") + data[8:], "its header runs past the end"),
        (lambda data: data[:8] + b"\xff" + data[9:], "its header is not JSON"),
        (lambda data: data + b"extra", r"bytes where its header says"),
    ],
    ids=["half", "5-bytes", "empty", "huge-header", "bad-header", "extra"],
)
def test_damaged_weights_are_one_line_before_any_loading(tmp_path, tiny_model, cut, message):
    """A truncated model.safetensors made `ask` end in the loader's SafetensorError traceback."""
    (tmp_path / "config.json").write_bytes((tiny_model / "config.json").read_bytes())
    (tmp_path / "model.safetensors").write_bytes(cut((tiny_model / "model.safetensors").read_bytes()))
    with pytest.raises(SocraticError, match=r"model\.safetensors is damaged \(.*" + message):
        student_folder.require_weights(tmp_path)


def test_the_latest_complete_checkpoint_is_found_by_number(tmp_path):
    assert student_folder.latest_checkpoint(tmp_path) is None
    for step, complete in ((2, True), (10, True), (12, False)):
        folder = student_folder.checkpoints_folder(tmp_path) / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    assert student_folder.latest_checkpoint(tmp_path).name == "checkpoint-10", "by number, not name; 12 is unfinished"
