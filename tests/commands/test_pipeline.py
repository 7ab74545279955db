"""`socratic run`: the whole pipeline on a tiny config (tiny random model, a handful of problems),
its report, the record of stages, resuming, and damaged state files; the config file itself is
test_pipeline_config.py."""

import dataclasses
import json
import re
import subprocess
from pathlib import Path

import pytest

from socratic.commands import pipeline
from socratic.commands.pipeline import config_from_values, find_run_folder, load_config, run_pipeline, stage_configs
from socratic.commands.run_folder import RunFolder
from socratic.commands.status import run_status
from socratic.core.errors import SocraticError
from socratic.core.locks import holding_lock


def tiny_config(tiny_model, **run):
    return config_from_values(
        {
            "name": "tiny",
            **run,
            "annotate": {"dataset": "gsm8k", "limit": 4},
            "train": {"model": str(tiny_model), "epochs": 2, "learning_rate": 3e-3, "batch_size": 2, "save_steps": 20},
            "solve": {"dataset": "gsm8k", "limit": 3, "max_new_tokens": 12, "max_steps": 2},
        }
    )


@pytest.mark.slow
def test_the_whole_pipeline_on_a_tiny_config(tiny_model, tmp_path, capsys):
    config = tiny_config(tiny_model)
    folder = run_pipeline(config, tmp_path / "run", own_processes=False)
    printed = capsys.readouterr().out
    for method in config.run.methods:
        assert f"| {method} | gsm8k/test | {method} | 3 |" in printed
        predictions = folder / "students" / method / "predictions.gsm8k.test.jsonl"
        assert len(predictions.read_text().splitlines()) == 3
    assert (folder / "students" / "iterative" / "qg" / "socratic.json").exists()
    report = folder / "report"
    assert {p.name for p in report.iterdir()} >= {"results.md", "accuracy.png", "report.html", "scores.json"}
    stages = json.loads((folder / "run.json").read_text())["stages"]
    assert list(stages) == ["annotate"] + [f"{s} {m}" for m in config.run.methods for s in ("train", "solve")] + [
        "evaluate"
    ]

    # Rerunning finds everything done: no stage trains or solves again.
    weights = (folder / "students" / "unified" / "model.safetensors").stat().st_mtime_ns
    run_pipeline(config, folder, own_processes=False)
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
    run_pipeline(config, elsewhere, own_processes=False)
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


def tiny_run(tiny_model, name: str, methods: list[str], **solve):
    """A run of the tiny model on two GSM8K problems, one epoch, 8 new tokens (plus `solve` options)."""
    return config_from_values(
        {
            "name": name,
            "methods": methods,
            "annotate": {"dataset": "gsm8k", "limit": 2},
            "train": {"model": str(tiny_model), "epochs": 1, "learning_rate": 3e-3, "batch_size": 2, "max_length": 256},
            "solve": {"dataset": "gsm8k", "limit": 2, "max_new_tokens": 8, **solve},
        }
    )


def test_the_whole_pipeline_on_a_tinier_config(tiny_model, tmp_path, capfd):
    # Fast twin of the test above: two methods (one of them the QG + QA pair), two problems, one epoch;
    # each stage in a process of its own, as `socratic run` runs them (their lines are the terminal's: capfd).
    config = tiny_run(tiny_model, "tinier", ["answer", "iterative"], max_steps=2)
    folder = run_pipeline(config, tmp_path / "run", threads=1, estimates={"train answer": 150.0, "solve answer": 3.0})
    printed = capfd.readouterr().out
    assert f"report: {folder / 'report' / 'report.html'}" in printed, "the run names its page"
    assert "== train answer (estimated 2.5 min)\n" in printed and "== solve answer\n" in printed  # (seconds: not shown)
    assert "   train answer: done in " in printed
    verdict = next(line for line in printed.splitlines() if line.startswith("Socratic (iterative) "))
    assert " vs answer-only " in verdict and verdict.endswith(" on 2 paired problems"), "the result in plain words"
    for method in config.run.methods:
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

    # Rerunning finds everything done: no stage trains or solves again (in this process: quicker to start).
    weights = (folder / "students" / "answer" / "model.safetensors").stat().st_mtime_ns
    run_pipeline(config, folder, threads=1, own_processes=False)
    assert (folder / "students" / "answer" / "model.safetensors").stat().st_mtime_ns == weights

    # On a machine with only the files git would commit, the finished methods are not trained again.
    committed = _files_git_would_commit(folder)
    assert not [f for f in committed if f.endswith((".safetensors", ".gguf")) or "checkpoint" in f]
    assert "students/iterative/predictions.gsm8k.test.jsonl" in committed
    elsewhere = tmp_path / "elsewhere"
    for name in committed:
        (elsewhere / name).parent.mkdir(parents=True, exist_ok=True)
        (elsewhere / name).write_bytes((folder / name).read_bytes())
    run_pipeline(config, elsewhere, threads=1, own_processes=False)
    assert not list(elsewhere.rglob("*.safetensors"))
    assert "nothing to train or solve" in capfd.readouterr().out


def test_an_unfinished_run_is_continued(tmp_path):
    config = load_config(None)
    old = tmp_path / "default-20260101-000000"
    old.mkdir()
    (old / "run.json").write_text(json.dumps({"config": config.as_json(), "stages": {}}))
    assert find_run_folder(config, None, tmp_path).root == old
    (old / "report").mkdir()
    (old / "report" / "results.md").write_text("done")
    assert find_run_folder(config, None, tmp_path).root != old  # finished: a new run
    (old / "report" / "results.md").unlink()
    other = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=9))
    new = find_run_folder(other, None, tmp_path).root
    assert new.name.startswith("default-2") and new != old
    assert find_run_folder(config, str(tmp_path / "mine"), tmp_path).root == tmp_path / "mine"


def test_a_run_folder_is_not_continued_with_other_settings(tmp_path):
    config = load_config(None)
    folder = tmp_path / "run"
    folder.mkdir()
    pipeline._Record(folder / "run.json", config)
    other = dataclasses.replace(
        config, solve=dataclasses.replace(config.solve, decode=dataclasses.replace(config.solve.decode, max_steps=9))
    )
    with pytest.raises(SocraticError, match=r"is a run of other settings \(\[solve\] max_steps: 6, now 9\)"):
        pipeline._Record(folder / "run.json", other)


def test_a_run_recorded_by_an_older_version_continues_after_an_upgrade(tmp_path):
    """Options added since the run started (with their default) and options moved into a group do not
    make its folder "a run of other settings"; a changed value still does."""
    config = load_config("cpu-gsm8k")
    recorded = config.as_json()
    del recorded["train"]["decision_weight"]  # added later, default 1
    recorded["solve"].update(recorded["solve"].pop("decode"))  # decoding options were ungrouped
    folder = tmp_path / "cpu-gsm8k-20261130-120000"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"config": recorded, "stages": {"annotate": 1.0}}))
    assert pipeline.settings_changed(recorded, config) is None
    assert find_run_folder(config, None, tmp_path).root == folder  # found as the unfinished run of this config
    pipeline._Record(folder / "run.json", config)  # continues
    assert json.loads((folder / "run.json").read_text())["stages"] == {"annotate": 1.0}

    recorded["train"]["decision_weight"] = 3.0
    assert pipeline.settings_changed(recorded, config) == "[train] decision_weight: 3.0, now 1.0"
    recorded["train"]["retired_option"] = 1
    assert "retired_option" in pipeline.settings_changed(recorded, config)


def test_the_stage_commands_read_the_same_file(tmp_path):
    """`socratic train/solve/annotate --config` take their section of the file `socratic run` takes, and
    flags typed on top override it."""
    from socratic import cli
    from socratic.commands.pipeline import stage_section
    from socratic.core.config import from_args

    parser = cli.make_parser()
    for stage, argv in [
        ("train", ["train", "--config", "cpu-gsm8k", "--method", "cot", "--epochs", "3"]),
        ("solve", ["solve", "--config", "cpu-gsm8k", "--method", "cot", "--limit", "5"]),
        ("annotate", ["annotate", "--config", "cpu-gsm8k"]),
    ]:
        args = parser.parse_args(argv)
        section, source = stage_section(args.config, stage)
        built = from_args(pipeline.SECTIONS[stage], args, section, source)
        run = getattr(load_config("cpu-gsm8k"), stage)
        if stage == "train":
            expected = dataclasses.replace(run, method="cot", epochs=3.0)
        elif stage == "solve":
            expected = dataclasses.replace(run, method="cot", data=dataclasses.replace(run.data, limit=5))
        else:
            expected = run
        assert built == expected, stage


def test_a_users_own_data_file_runs_with_its_only_split(tmp_path, caplog):
    mine = tmp_path / "mine.jsonl"
    mine.write_text("".join(json.dumps({"question": f"What is {i} + 1?", "answer": i + 1}) + "\n" for i in range(4)))
    config = config_from_values({"annotate": {"dataset": str(mine)}, "solve": {"dataset": str(mine)}})
    stages = stage_configs(config, RunFolder(tmp_path / "run"))
    assert stages["train cot"].data.dataset == str(mine), "train reads the chains' problems from the same file"
    test_task, test_split, _ = config.solve.data.load("test")
    pipeline._warn_if_trained_on_the_test_problems(config, test_task.name, test_split)
    assert "trained and tested on the same problems (mine/all)" in caplog.text


def test_processes_sharing_a_run_each_add_their_stage_times(tmp_path):
    # Two `socratic run --only` processes hold a record of the same run.json: neither overwrites the other.
    config = load_config(None)
    first, second = (pipeline._Record(tmp_path / "run.json", config) for _ in range(2))
    with first.stage("train cot"):
        pass
    with second.stage("train unified"):
        pass
    with first.stage("train cot"):  # a resumed stage adds its time
        pass
    with pytest.raises(RuntimeError), second.stage("solve unified"):
        raise RuntimeError("killed")
    stages = json.loads((tmp_path / "run.json").read_text())["stages"]
    assert list(stages) == ["train cot", "train unified"], "a failed stage records no time"
    assert not (tmp_path / "run.json.lock").exists()


def test_only_some_methods_run_and_the_last_process_writes_the_report(tiny_model, tmp_path, capsys):
    config = tiny_run(tiny_model, "shared", ["answer", "cot"])
    folder = tmp_path / "run"
    with pytest.raises(SocraticError, match=r"--only unified: not among this run's methods \(answer, cot\)"):
        run_pipeline(config, folder, threads=1, only=("unified",), own_processes=False)
    run_pipeline(config, folder, threads=1, only=("cot",), own_processes=False)
    assert "== report: when answer is solved" in capsys.readouterr().out
    assert not (folder / "students" / "answer").exists() and not (folder / "report").exists()
    # Where it stands, read from the folder while another process starts the other student.
    test_ids = {p.id for p in config.solve.data.load("test")[2]}
    with holding_lock(folder / "students" / "answer" / "checkpoints.lock", "busy"):
        table = run_status(config.run.methods, RunFolder(folder), "gsm8k", "test", test_ids)
    steps = json.loads((folder / "students" / "cot" / "manifest.json").read_text())["steps"]
    assert table.splitlines()[2:] == [
        "| chains | 2 chains |  |",
        "| answer | started, no checkpoint yet (now) | – |",
        f"| cot | trained, {steps} steps | 2 of 2 ({_right(folder / 'students' / 'cot')}) |",
    ]
    run_pipeline(config, folder, threads=1, only=("answer",), own_processes=False)
    printed = capsys.readouterr().out
    assert "| answer | gsm8k/test | answer | 2 |" in printed and "| cot | gsm8k/test | cot | 2 |" in printed
    assert (folder / "report" / "report.html").is_file()
    stages = json.loads((folder / "run.json").read_text())["stages"]
    assert set(stages) == {"annotate", "train cot", "solve cot", "train answer", "solve answer", "evaluate"}
    with pytest.raises(SocraticError, match="give them all the same --out"):
        pipeline.run_command(pipeline.RunArgs(config="default", only=("cot",)))


def _right(student: Path) -> str:
    predictions = [json.loads(line) for line in (student / "predictions.gsm8k.test.jsonl").read_text().splitlines()]
    return f"{100 * sum(bool(p['correct']) for p in predictions) / len(predictions):.1f} % right"


def test_the_status_of_a_missing_run_says_so(tmp_path, capsys):
    from socratic.cli import main

    assert main(["run", "--config", "cpu-gsm8k", "--out", str(tmp_path / "nowhere"), "--status"]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'nowhere'}: no run here yet\n"
    assert not (tmp_path / "nowhere").exists(), "looking writes nothing"


# --- issue 35: damaged state files ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"config": {"run"', "not valid JSON"),
        (b"[1, 2]", "expected a JSON object, found list"),
        (b"\xff\xfe", "not UTF-8 text"),
        (b'{"config": {}, "stages": [1]}', "'stages' is not a table of seconds"),
        (b'{"config": {}, "stages": {"annotate": "long"}}', "'stages' is not a table of seconds"),
        (b'{"stages": ' + b"[" * 5000 + b"]" * 5000 + b"}", "not valid JSON (nested too deeply)"),
    ],
    ids=["truncated", "list", "bytes", "stages-list", "stages-text", "deep"],
)
def test_a_damaged_run_json_is_one_line_naming_it_and_another_runs_is_skipped(tmp_path, caplog, content, reason):
    """A truncated or non-object run.json made `socratic run` end in JSONDecodeError / AttributeError."""
    config = load_config(None)
    folder = tmp_path / "default-20260101-000000"
    folder.mkdir()
    (folder / "run.json").write_bytes(content)
    # Looking for an unfinished run of this config: the damaged one is skipped with a warning, not continued.
    assert find_run_folder(config, None, tmp_path).root != folder
    assert f"{folder / 'run.json'} is damaged ({reason}" in caplog.text
    # The run's own folder (--out): one line, and the file is left as it was.
    expected = rf"run\.json is damaged \({re.escape(reason)}.*: delete it \(the run's files are kept"
    with pytest.raises(SocraticError, match=expected):
        pipeline._Record(folder / "run.json", config)
    assert (folder / "run.json").read_bytes() == content


@pytest.mark.parametrize(
    ("name", "content", "shown"),
    [
        ("manifest.json", b'{"steps": ', "is damaged (not valid JSON"),
        ("manifest.json", b'"text"', "is damaged (expected a JSON object, found str"),
        ("checkpoints/checkpoint-3/trainer_state.json", b'{"global_step": 3', "is damaged (not valid JSON"),
        ("checkpoints/checkpoint-3/trainer_state.json", b'{"global_step": "3"}', "is damaged (no whole global_step"),
        ("checkpoints/checkpoint-3/trainer_state.json", b"[]", "is damaged (expected a JSON object, found list"),
    ],
    ids=["manifest-truncated", "manifest-string", "state-truncated", "state-wrong-type", "state-list"],
)
def test_status_names_a_damaged_state_file_in_its_table(tmp_path, name, content, shown):
    """A truncated manifest.json or trainer_state.json made `run --status` end in a traceback."""
    student = tmp_path / "students" / "unified"
    (tmp_path / "run.json").write_text('{"config": {}, "stages": {}}')
    if name == "manifest.json":  # a finished student: its manifest and info file
        student.mkdir(parents=True)
        (student / "socratic.json").write_text("{}")
    target = student / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    table = run_status(["unified"], RunFolder(tmp_path), "gsm8k", "test", {"a"})
    row = next(line for line in table.splitlines() if line.startswith("| unified |"))
    assert f"{target} {shown}" in row, table
    assert row.count("|") == 4  # the message cannot break the table
