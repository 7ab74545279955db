"""The command line's error contract: a user-fixable problem is one `socratic: error:` line and exit
status 2; anything else is a bug and keeps its traceback."""

import errno
import json

import pytest

from socratic.cli import main
from socratic.commands import stages
from socratic.core.jsonl import write_jsonl
from socratic.core.records import Prediction


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def one_error_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("socratic: error: "), err
    return err.strip()


def predictions(tmp_path, ids=("gsm8k/test/0", "gsm8k/test/1")):
    rows = [Prediction(i, "cot", (), "Answer: 3", "3", False, {"finish": "answer", "gold": "18"}) for i in ids]
    return write_jsonl(tmp_path / "u" / "predictions.gsm8k.test.jsonl", rows)


def test_evaluate_refuses_a_file_written_twice(capsys, tmp_path):
    path = predictions(tmp_path, ids=("gsm8k/test/0", "gsm8k/test/1", "gsm8k/test/0"))
    status, _, err = run(capsys, "evaluate", str(path))
    assert status == 2
    assert (
        one_error_line(err)
        == f"socratic: error: {path}: problem 'gsm8k/test/0' is predicted twice (two runs wrote this file?)"
    )


def test_a_report_folder_that_is_a_file_is_one_line(capsys, tmp_path):
    path = predictions(tmp_path)
    (tmp_path / "report").write_text("not a folder")
    status, _, err = run(capsys, "evaluate", str(path), "--report", str(tmp_path / "report" / "deeper"))
    assert status == 2
    assert one_error_line(err) == (
        f"socratic: error: cannot write {tmp_path / 'report' / 'deeper'}: {tmp_path / 'report'} is a file, not a folder"
    )


def test_an_os_error_naming_a_file_is_one_line(capsys, tmp_path, monkeypatch):
    def unreadable(config):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "secret.jsonl"))

    monkeypatch.setattr(stages, "evaluate", unreadable)
    status, _, err = run(capsys, "evaluate", "x.jsonl")
    assert status == 2
    assert one_error_line(err) == f"socratic: error: {tmp_path / 'secret.jsonl'}: Permission denied"


def test_a_full_disk_is_one_line_even_without_a_file_name(capsys, monkeypatch):
    def full(config):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(stages, "evaluate", full)
    status, _, err = run(capsys, "evaluate", "x.jsonl")
    assert status == 2 and one_error_line(err) == "socratic: error: No space left on device"


def test_other_os_errors_are_bugs_with_a_traceback(monkeypatch):
    def reset(config):
        raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")

    monkeypatch.setattr(stages, "evaluate", reset)
    with pytest.raises(ConnectionResetError):
        main(["evaluate", "x.jsonl"])


def test_an_error_message_holding_a_newline_is_still_one_line(capsys, tmp_path):
    folder = tmp_path / "two\nlines"
    folder.mkdir()
    path = folder / "mine.jsonl"
    path.write_text(json.dumps({"question": "q"}) + "\n")
    status, _, err = run(capsys, "data", "show", "--dataset", str(path))
    assert status == 2 and "field 'answer': missing" in one_error_line(err)
