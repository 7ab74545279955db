"""`socratic run`: the whole pipeline on a tiny config (tiny random model, a handful of problems),
its report, the record of stages, resuming, and config errors."""

import json
import subprocess

import pytest

from socratic.errors import SocraticError
from socratic.pipeline import RunConfig, load_config, run_folder, run_pipeline


def test_shipped_configs_load():
    assert load_config(None).name == "default"
    cpu = load_config("cpu-gsm8k")
    assert cpu.test_problems == 1319 and cpu.methods == ("answer", "cot", "unified", "iterative")
    for name in ("cpu-svamp", "cpu-strategyqa", "paper-gsm8k", "paper-svamp", "paper-strategyqa"):
        assert load_config(f"configs/{name}.toml").name == name
    assert load_config("cpu-svamp").teacher == "llamacpp:qwen2.5-coder-1.5b", "SVAMP has no human chains"


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nepoch = 3\n')
    with pytest.raises(SocraticError, match="did you mean 'epochs'"):
        load_config(bad)
    bad.write_text('methods = ["unified", "socratic"]\n')
    with pytest.raises(SocraticError, match="unknown method 'socratic'"):
        load_config(bad)
    bad.write_text("epochs = [\n")
    with pytest.raises(SocraticError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(SocraticError, match="config file not found"):
        load_config(tmp_path / "missing.toml")


@pytest.mark.slow
def test_the_whole_pipeline_on_a_tiny_config(tiny_model, tmp_path, capsys):
    config = RunConfig(
        name="tiny",
        model=str(tiny_model),
        train_problems=4,
        test_problems=3,
        epochs=2,
        learning_rate=3e-3,
        batch_size=2,
        max_new_tokens=12,
        max_steps=2,
    )
    folder = run_pipeline(config, tmp_path / "run")
    printed = capsys.readouterr().out
    for method in config.methods:
        assert f"| {method} | gsm8k/test | {method} | 3 |" in printed
        predictions = folder / "students" / method / "predictions.gsm8k.test.jsonl"
        assert len(predictions.read_text().splitlines()) == 3
    assert (folder / "students" / "iterative" / "qg" / "socratic.json").exists()
    report = folder / "report"
    assert {p.name for p in report.iterdir()} >= {"results.md", "accuracy.png", "report.html", "scores.json"}
    stages = json.loads((folder / "run.json").read_text())["stages"]
    assert list(stages) == ["annotate"] + [f"{s} {m}" for m in config.methods for s in ("train", "solve")] + [
        "evaluate"
    ]

    # Rerunning finds everything done: no stage trains or solves again.
    weights = (folder / "students" / "unified" / "model.safetensors").stat().st_mtime_ns
    run_pipeline(config, folder)
    assert (folder / "students" / "unified" / "model.safetensors").stat().st_mtime_ns == weights
    assert len((folder / "students" / "cot" / "predictions.gsm8k.test.jsonl").read_text().splitlines()) == 3

    # The run folder committed to git leaves weights out; on a machine with only the committed files,
    # the finished methods are not trained again.
    committed = _files_git_would_commit(folder)
    assert not [f for f in committed if f.endswith((".safetensors", ".gguf")) or "checkpoint" in f]
    assert "students/iterative/predictions.gsm8k.test.jsonl" in committed
    assert "students/unified/loss.png" in committed
    elsewhere = tmp_path / "elsewhere"
    for name in committed:
        (elsewhere / name).parent.mkdir(parents=True, exist_ok=True)
        (elsewhere / name).write_bytes((folder / name).read_bytes())
    run_pipeline(config, elsewhere)
    assert not list(elsewhere.rglob("*.safetensors"))
    assert "nothing to train or solve" in capsys.readouterr().out


def _files_git_would_commit(folder):
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    listed = subprocess.run(
        ["git", "-C", str(folder), "ls-files", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
        text=True,
    )
    return set(listed.stdout.split())


def test_the_whole_pipeline_on_a_tinier_config(tiny_model, tmp_path, capsys):
    # Fast twin of the test above: two methods (one of them the QG + QA pair), two problems, one epoch.
    config = RunConfig(
        name="tinier",
        model=str(tiny_model),
        methods=("answer", "iterative"),
        train_problems=2,
        test_problems=2,
        epochs=1,
        learning_rate=3e-3,
        batch_size=2,
        max_length=256,
        max_new_tokens=8,
        max_steps=2,
    )
    folder = run_pipeline(config, tmp_path / "run", threads=1)
    printed = capsys.readouterr().out
    for method in config.methods:
        assert f"| {method} | gsm8k/test | {method} | 2 |" in printed
        assert len((folder / "students" / method / "predictions.gsm8k.test.jsonl").read_text().splitlines()) == 2
    assert (folder / "students" / "iterative" / "qg" / "socratic.json").exists()
    assert {p.name for p in (folder / "report").iterdir()} >= {
        "results.md",
        "accuracy.png",
        "report.html",
        "scores.json",
    }
    stages = json.loads((folder / "run.json").read_text())["stages"]
    assert list(stages) == [
        "annotate",
        "train answer",
        "solve answer",
        "train iterative",
        "solve iterative",
        "evaluate",
    ]

    # Rerunning finds everything done: no stage trains or solves again.
    weights = (folder / "students" / "answer" / "model.safetensors").stat().st_mtime_ns
    run_pipeline(config, folder, threads=1)
    assert (folder / "students" / "answer" / "model.safetensors").stat().st_mtime_ns == weights

    # On a machine with only the files git would commit, the finished methods are not trained again.
    committed = _files_git_would_commit(folder)
    assert not [f for f in committed if f.endswith((".safetensors", ".gguf")) or "checkpoint" in f]
    assert "students/iterative/predictions.gsm8k.test.jsonl" in committed
    elsewhere = tmp_path / "elsewhere"
    for name in committed:
        (elsewhere / name).parent.mkdir(parents=True, exist_ok=True)
        (elsewhere / name).write_bytes((folder / name).read_bytes())
    run_pipeline(config, elsewhere, threads=1)
    assert not list(elsewhere.rglob("*.safetensors"))
    assert "nothing to train or solve" in capsys.readouterr().out


def test_an_unfinished_run_is_continued(tmp_path):
    config = RunConfig(name="demo")
    old = tmp_path / "demo-20260101-000000"
    old.mkdir()
    (old / "run.json").write_text(json.dumps({"config": json.loads(json.dumps(config.__dict__)), "stages": {}}))
    assert run_folder(config, None, tmp_path) == old
    (old / "report").mkdir()
    (old / "report" / "results.md").write_text("done")
    assert run_folder(config, None, tmp_path) != old  # finished: a new run
    assert run_folder(RunConfig(name="demo", epochs=9), None, tmp_path).name.startswith("demo-2")
    assert run_folder(config, str(tmp_path / "mine"), tmp_path) == tmp_path / "mine"
