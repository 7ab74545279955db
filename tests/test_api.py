"""The Python API, through its public names only (`socratic.<name>`): the README's "From Python" example
as written, the stages on a tiny model, `Student`, checked configs, model cards, a cheap `import socratic`."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

import socratic

README = Path(__file__).parents[1] / "README.md"


def readme_example() -> str:
    section = README.read_text(encoding="utf-8").split("### From Python\n", 1)[1].split("\n### ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    return code


def test_import_socratic_loads_no_heavy_library():
    heavy = "('torch', 'transformers', 'trl', 'fastapi')"
    code = f"import sys, socratic; print(sorted(m for m in {heavy} if m in sys.modules))"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert found.strip() == "[]"


def test_every_public_name_resolves():
    for name in socratic.__all__:
        assert getattr(socratic, name) is not None, name
    assert set(socratic.__all__) <= set(dir(socratic))
    with pytest.raises(AttributeError):
        socratic.no_such_name  # noqa: B018


def test_the_readme_example_runs_as_written(make_tiny_student, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    # One core, as a test worker has (conftest.py): "all cores" waiting on each other is 10x slower with `-n 0`.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    Path("runs/gsm8k").mkdir(parents=True)
    shutil.copytree(make_tiny_student("unified"), "runs/gsm8k/unified", symlinks=True)
    exec(compile(readme_example(), str(README), "exec"), {})
    printed = capsys.readouterr().out
    assert re.search(r"\d+\.\d% of 5 problems\n$", printed), printed
    assert Path("runs/gsm8k/report/report.html").is_file()
    predictions = Path("runs/gsm8k/unified/predictions.gsm8k.test.jsonl")
    assert len(predictions.read_text().splitlines()) == 5
    card = ModelCard.load("runs/gsm8k/unified/README.md")  # evaluate put the results on the student's card
    (result,) = card.data.eval_results
    assert (result.dataset_type, result.dataset_split) == ("openai/gsm8k", "test")
    assert 0 <= result.metric_value <= 100


def test_student_solves_and_streams_the_same_dialogue(make_tiny_student):
    student = socratic.Student.load(make_tiny_student("unified"), decode=socratic.DecodeOptions(max_new_tokens=24))
    questions = ["Tom has 3 boxes of 12 eggs and breaks 5. How many eggs are left?", "What is 2 plus 3?"]
    predictions = student.solve(questions)
    assert [p.problem_id for p in predictions] == ["ask/1", "ask/2"] and student.method == "unified"
    assert all(isinstance(p, socratic.Prediction) for p in predictions)
    pieces = list(student.stream(questions[0]))
    assert pieces and "".join(pieces).startswith(predictions[0].output.rstrip("\n").split("\n")[0])
    assert "".join(pieces).rsplit("\n", 1)[-1].startswith("Answer:")
    abandoned = student.stream(questions[1])
    next(abandoned, None)
    abandoned.close()  # a caller that stops reading frees the problem's place
    assert not student.dialogues.busy
    with pytest.raises(socratic.SocraticError, match="list"):
        student.solve("one problem, not a list")


def test_a_bad_value_built_in_python_is_the_commands_one_line_error(tmp_path):
    with pytest.raises(socratic.SocraticError, match="batch_size"):
        socratic.train(socratic.TrainConfig(batch_size=0, out=str(tmp_path / "s")))
    with pytest.raises(socratic.SocraticError, match="unifed"):
        socratic.solve(socratic.SolveConfig(method="unifed", student=socratic.StudentOptions(str(tmp_path))))
    with pytest.raises(socratic.SocraticError, match="stage config"):
        socratic.evaluate("predictions.jsonl")


def test_train_through_the_api_writes_a_model_card(tiny_model, tmp_path):
    chains = socratic.annotate(
        socratic.AnnotateConfig(out=str(tmp_path / "chains.jsonl"), data=socratic.DataOptions(split="train", limit=6))
    )
    config = socratic.TrainConfig(
        method="unified",
        chains=str(chains),
        model=str(tiny_model),
        out=str(tmp_path / "unified"),
        max_steps=1,
        max_length=256,
        batch_size=2,
        threads=1,
    )
    out = socratic.train(config)
    card = ModelCard.load(out / "README.md")
    assert card.data.tags[-1] == "unified" and card.data.datasets == ["openai/gsm8k"]
    assert card.data.base_model is None  # a folder on this machine is no hub id
    assert "## Usage" in card.text and "Not evaluated yet" in card.text and "on 6 chains of gsm8k" in card.text
    # A README.md that socratic did not write is the user's: never replaced.
    (out / "README.md").write_text("my notes\n")
    socratic.train(config)  # finished already: kept, and so is the card
    assert (out / "README.md").read_text() == "my notes\n"
