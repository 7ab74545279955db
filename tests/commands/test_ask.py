"""`socratic ask`: the dialogue it streams and the record it prints are what `socratic solve` saves for
the same problem (one-pass and iterative, hf and llama.cpp), from an argument or stdin; bad input is
one clear line."""

import io
import json
import shutil

import pytest

from socratic.cli import main
from socratic.commands.ask import AskConfig, run_ask
from socratic.commands.solve import SolveConfig, run_solve
from socratic.core.config import build
from socratic.core.errors import SocraticError
from socratic.core.jsonl import read_jsonl
from socratic.core.records import Prediction, from_dict
from socratic.solving.dialogue import mark_calculator
from socratic.tasks import load_task

FAST = dict(max_new_tokens=24, step_tokens=8, max_steps=2, threads=1)


def solved(student_options: dict, engine: str, tmp_path, question: str) -> Prediction:
    """What `socratic solve` saves for `question` (a one-problem file)."""
    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"question": question, "answer": "0"}) + "\n")
    config = build(
        SolveConfig, dict(**student_options, dataset=str(data), engine=engine, out=str(tmp_path / "p.jsonl"), **FAST)
    )
    run_solve(config)
    [found] = read_jsonl(tmp_path / "p.jsonl", Prediction)
    return found


def asked(student_options: dict, engine: str, question: str, as_json: bool) -> str:
    out = io.StringIO()
    config = build(AskConfig, dict(**student_options, engine=engine, json=as_json, **FAST))
    run_ask(config, question, stdout=out)
    return out.getvalue()


def pair_folder(make_tiny_student, tmp_path):
    """The folder `train --method iterative` writes: qg/ and qa/ side by side."""
    pair = tmp_path / "iterative"
    pair.mkdir()
    for role in ("qg", "qa"):
        shutil.copytree(make_tiny_student(role), pair / role, symlinks=True)
    return pair


@pytest.mark.parametrize(
    ("kind", "method", "engine"),
    [
        ("tiny", "unified", "hf"),
        ("tiny", "unified", "llamacpp"),
        ("tiny", "iterative", "hf"),
        # SmolLM2 standing in for the students (as in test_solve.py).
        pytest.param("real", "unified", "llamacpp", marks=pytest.mark.slow),
        pytest.param("real", "iterative", "hf", marks=pytest.mark.slow),
    ],
)
def test_ask_gives_the_dialogue_solve_saves(any_make_student, tmp_path, engine, method):
    question = load_task("gsm8k").load("test", limit=1)[0].question
    if method == "unified":
        options = dict(model=str(any_make_student("unified")))
        solve_options = dict(method="unified", **options)
    else:
        pair = pair_folder(any_make_student, tmp_path)
        options = dict(model=str(pair))
        solve_options = dict(method="iterative", qg=str(pair / "qg"), qa=str(pair / "qa"))
    expected = solved(solve_options, engine, tmp_path, question)
    record = from_dict(Prediction, json.loads(asked(options, engine, question, as_json=True)))
    assert (record.steps, record.output, record.answer) == (expected.steps, expected.output, expected.answer)
    assert record.meta["finish"] == expected.meta["finish"]
    # The streamed text is the dialogue: the student's lines (calculator values marked), then the answer line.
    streamed = asked(options, engine, question, as_json=False)
    dialogue = expected.output if method == "unified" else expected.output.removesuffix("[END]")
    assert streamed.startswith(mark_calculator(dialogue.rstrip("\n").rsplit("\nAnswer:", 1)[0]))
    assert streamed.endswith("\n") and streamed.splitlines()[-1].startswith("Answer:")


def test_ask_reads_the_problem_from_stdin_and_reports_bad_input(make_tiny_student, tmp_path, capsys, monkeypatch):
    student = str(make_tiny_student("unified"))
    monkeypatch.setattr("sys.stdin", io.StringIO("What is 2 plus 3?\n"))
    assert main(["ask", "--model", student, "--max-new-tokens", "8", "--threads", "1", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["problem_id"] == "ask/1" and record["method"] == "unified" and record["correct"] is None
    monkeypatch.setattr("sys.stdin", io.StringIO("  \n"))
    assert main(["ask", "--model", student]) == 2
    assert "the problem is empty" in capsys.readouterr().err
    assert main(["ask", "--model", str(make_tiny_student("qa")), "x"]) == 2
    assert "one half of an iterative pair" in capsys.readouterr().err
    assert main(["ask", "--model", str(tmp_path), "x"]) == 2
    assert "socratic.json" in capsys.readouterr().err


def test_calculator_values_are_marked_and_the_models_own_are_not():
    text = "A: 3*4 = <<3*4=12>>12, then <<2+2=5>>5 and <<x*2=4>>4\n"
    assert mark_calculator(text) == "A: 3*4 = <<3*4=[12]>>12, then <<2+2=5>>5 and <<x*2=4>>4\n"


def test_an_interactive_session_answers_one_problem_after_another(make_tiny_student, monkeypatch):
    typed = iter(["What is 2 plus 3?", "What is 4 times 5?", ""])
    monkeypatch.setattr("builtins.input", lambda prompt: next(typed))

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out = Terminal()
    config = build(AskConfig, dict(model=str(make_tiny_student("unified")), max_new_tokens=8, threads=1, json=True))
    run_ask(config, None, stdin=Terminal(), stdout=out)
    records = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    assert [r["problem_id"] for r in records] == ["ask/1", "ask/2"]
    with pytest.raises(SocraticError):
        run_ask(build(AskConfig, dict(qg="a")), "x")


# --- issue 35: hostile input to ask ------------------------------------------------------------------


def copied_student(make_tiny_student, tmp_path):
    """A real copy of a tiny student folder (the fixture's files are links), to damage."""
    folder = tmp_path / "student"
    shutil.copytree(make_tiny_student("unified"), folder, symlinks=False)
    return folder


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("socratic: error: "), err
    return err


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes(range(256)), "stdin is not UTF-8 text (byte 0x80 at byte 129)"),
        (b"What is 2 \xff plus 3?", "stdin is not UTF-8 text (byte 0xff at byte 11)"),
    ],
)
def test_bytes_on_stdin_that_are_not_text_are_one_line(make_tiny_student, capsys, monkeypatch, data, message):
    """Random bytes on stdin ended in `TypeError: TextEncodeInput must be Union[...]`."""
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="surrogateescape"))
    assert main(["ask", "--model", str(make_tiny_student("unified")), "--threads", "1"]) == 2
    assert message in one_error_line(capsys)


def test_a_problem_argument_that_is_not_text_is_one_line(make_tiny_student, capsys):
    problem = b"caf\xe9?".decode("utf-8", "surrogateescape")  # how Python passes such argv bytes on
    assert main(["ask", "--model", str(make_tiny_student("unified")), problem]) == 2
    assert "the problem is not UTF-8 text (byte 0xe9 at character 4)" in one_error_line(capsys)


@pytest.mark.parametrize("engine", ["hf", "llamacpp"])
def test_a_damaged_student_folder_is_one_line(make_tiny_student, tmp_path, capsys, engine):
    """A truncated model.safetensors (SafetensorError) or a folder without config.json (ValueError:
    Unrecognized model) were tracebacks."""
    student = copied_student(make_tiny_student, tmp_path)
    weights = student / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100_000])
    argv = ["ask", "--model", str(student), "--engine", engine, "--threads", "1", "What is 2 plus 3?"]
    assert main(argv) == 2
    assert f"{weights} is damaged (100,000 bytes where its header says" in one_error_line(capsys)
    (student / "config.json").unlink()
    assert main(argv) == 2
    assert f"{student} has no config.json beside its weights" in one_error_line(capsys)


def test_a_damaged_gguf_is_one_line(make_tiny_student, tmp_path, capsys):
    student = copied_student(make_tiny_student, tmp_path)
    gguf = student / "model.f16.gguf"  # the default weights type
    gguf.write_bytes(gguf.read_bytes()[:5000])  # newer than the weights: used as it is
    assert main(["ask", "--model", str(student), "--engine", "llamacpp", "--threads", "1", "What is 2 plus 3?"]) == 2
    assert f"llama.cpp could not load {gguf}: not a GGUF file" in one_error_line(capsys)


def test_what_the_model_writes_cannot_drive_the_terminal():
    from socratic.commands.ask import shown

    config = build(AskConfig, dict(model="m", calculator=True))
    written = "A: 3 * 4 = <<3*4=12>>12\x1b[2J\x1b]0;title\x07\n"
    assert shown(written, config, ("\033[1m", "\033[0m"), terminal=True) == (
        "A: 3 * 4 = <<3*4=\033[1m12\033[0m>>12\\x1b[2J\\x1b]0;title\\x07\n"
    )
    # Into a file or a pipe: exactly what `solve` saves.
    assert shown(written, config, ("[", "]"), terminal=False) == "A: 3 * 4 = <<3*4=[12]>>12\x1b[2J\x1b]0;title\x07\n"
