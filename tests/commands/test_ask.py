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


@pytest.mark.parametrize(("method", "engine"), [("unified", "hf"), ("unified", "llamacpp"), ("iterative", "hf")])
def test_ask_gives_the_dialogue_solve_saves_tiny(make_tiny_student, tmp_path, engine, method):
    check_ask_gives_the_dialogue_solve_saves(make_tiny_student, tmp_path, engine, method)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "engine"), [("unified", "llamacpp"), ("iterative", "hf")])
def test_ask_gives_the_dialogue_solve_saves(make_student, tmp_path, engine, method):
    # SmolLM2 standing in for the students (as in test_solve.py).
    check_ask_gives_the_dialogue_solve_saves(make_student, tmp_path, engine, method)


def check_ask_gives_the_dialogue_solve_saves(make_tiny_student, tmp_path, engine, method):
    question = load_task("gsm8k").load("test", limit=1)[0].question
    if method == "unified":
        options = dict(model=str(make_tiny_student("unified")))
        solve_options = dict(method="unified", **options)
    else:
        pair = pair_folder(make_tiny_student, tmp_path)
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
