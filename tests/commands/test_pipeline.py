"""`socratic run`: the whole pipeline on a tiny config (tiny random model, a handful of problems),
its report, the record of stages, resuming, and config errors."""

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

SHIPPED = (
    "default",
    "tiny",
    "cpu-gsm8k",
    "cpu-svamp",
    "cpu-strategyqa",
    "paper-gsm8k",
    "paper-svamp",
    "paper-strategyqa",
)


def test_shipped_configs_load():
    assert load_config(None).run.name == "default"
    demo = load_config(None)  # issue 34: no teacher to install, the whole SVAMP test split, every method
    assert (demo.annotate.teacher, demo.annotate.data.dataset, demo.solve.data.dataset) == ("shipped", "svamp", "svamp")
    assert demo.solve.data.limit == 300 and demo.run.methods == ("answer", "cot", "unified", "iterative")
    assert load_config("tiny").annotate.teacher == "human", "the pipeline check needs no teacher either"
    cpu = load_config("cpu-gsm8k")
    assert cpu.solve.data.limit == 1319 and cpu.run.methods == ("answer", "cot", "unified", "iterative")
    for name in SHIPPED:
        assert load_config(f"configs/{name}.toml").run.name == name
    assert load_config("cpu-svamp").annotate.teacher == "llamacpp:qwen2.5-coder-1.5b", "SVAMP has no human chains"


def test_the_2400_problem_config_is_cpu_gsm8k_with_four_times_the_data_at_batch_1():
    """Issue 19: same students, recipe and test split as cpu-gsm8k; 2,400 training problems, whose
    optimizer steps are not divided by 4 again (batch 1 instead of 4), and none of the validation slice."""
    small, large = load_config("cpu-gsm8k"), load_config("cpu-gsm8k-2400")
    assert (large.annotate.data.limit, large.train.batch_size) == (2400, 1)
    assert large.annotate.data.limit <= 7173  # problems 7,173-7,472 are issue 19's validation slice
    assert dataclasses.replace(large.annotate, data=small.annotate.data) == small.annotate
    assert dataclasses.replace(large.train, batch_size=4, save_steps=20) == small.train
    assert large.solve == small.solve and large.run.methods == small.run.methods


def test_the_full_config_is_cpu_gsm8k_2400_on_every_problem_before_the_validation_slice():
    """Issue 33: the same students, recipe and test split as cpu-gsm8k-2400, on GSM8K's training problems
    0-7,172; the validation slice (7,173-7,472, the split's last 300) is never annotated, so never trained."""
    large, full = load_config("cpu-gsm8k-2400"), load_config("cpu-gsm8k-full")
    _, split, problems = full.annotate.data.load("train")
    validation = {f"gsm8k/train/{i}" for i in range(7173, 7473)}
    assert split == "train" and len(full.annotate.data.task().load(split)) == 7473
    chosen = {p.id for p in problems}
    assert len(chosen) == 7173 and not chosen & validation
    # train's --limit/--offset count the chains file's problems, not the split's: unset, it trains on
    # every chain annotate wrote and nothing else.
    trained = [c.data for key, c in stage_configs(full, RunFolder(Path("RUN"))).items() if key.startswith("train")]
    assert len(trained) == 4 and all((d.limit, d.offset) == (None, 0) for d in trained)
    assert dataclasses.replace(full.annotate, data=large.annotate.data) == large.annotate
    assert dataclasses.replace(full.train, save_steps=25) == large.train
    assert full.solve == large.solve and full.run.methods == large.run.methods


def test_the_diverse_reasoning_config_is_cpu_svamp_with_four_samples():
    """Issue 20: the same teacher, problems, students and test split as cpu-svamp; four sampled replies."""
    one, four = load_config("cpu-svamp"), load_config("configs/cpu-svamp-diverse.toml")
    assert (four.annotate.samples, four.annotate.temperature, four.annotate.keep) == (4, 0.7, "all")
    assert four.run.methods == ("unified", "iterative")
    same = dataclasses.replace(four.annotate, samples=1, temperature=None, concurrency=one.annotate.concurrency)
    assert same == one.annotate
    assert (four.train, four.solve) == (one.train, one.solve)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_give_the_stages_what_they_gave_before(name):
    """Each stage's settings, as the pipeline built them from the one-schema config files before they
    had sections (recorded in tests/data/shipped_stage_configs.json), are unchanged, but for the one default
    changed on purpose since: the llamacpp engine's GGUF weights type, f16 instead of f32 (issue 32)."""
    before = json.loads((Path(__file__).parents[1] / "data" / "shipped_stage_configs.json").read_text())[name]
    now = stage_configs(load_config(name), RunFolder(Path("RUN")))
    assert [key for key, _ in before] == [key.split()[0] for key in now]
    for (key, old), new in zip(before, now.values(), strict=False):
        values = flat(new, key)
        assert {k: values[k] for k in old} == old, key
        added = {k: v for k, v in values.items() if k not in old}  # options that did not exist: at their defaults
        assert added == {k: v for k, v in flat(type(new)(), key).items() if k in added}, key


def flat(stage_config, key: str) -> dict:
    """A stage config as the old flat dict: groups flattened, today's names mapped back."""
    values = {}
    for name, value in dataclasses.asdict(stage_config).items():
        values.update(
            value if isinstance(value, dict) and name in ("data", "runtime", "decode", "student") else {name: value}
        )
    values["mode"] = values.pop("method", None)
    if key.startswith("solve"):
        values["out"] = f"RUN/students/{values['mode']}/predictions.{values['dataset']}.test.jsonl"
    return values


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'name = "x"\n[train]\nepoch = 3\n',
            r"bad.toml: \[train\] 'epoch': unknown option \(did you mean 'epochs'\?\)",
        ),
        ("epochs = 3\n", r"bad.toml: 'epochs' is an option of \[train\]: move it into that section"),
        ("nme = 'x'\n", r"bad.toml: unknown key 'nme' \(did you mean 'name'\?\)"),
        ('methods = ["unified", "socratic"]\n', r"bad.toml: 'methods': unknown value 'socratic'"),
        ('methods = "unified"\n', r"bad.toml: 'methods': expected a list of names"),
        ('[train]\nepochs = "two"\n', r"\[train\] 'epochs': expected a number, not 'two'"),
        ("[train]\nmax_length = 1.5\n", r"\[train\] 'max_length': expected a whole number, not 1.5"),
        ("[annotate]\nlimit = -4\n", r"\[annotate\] 'limit': must be at least 1, not -4"),
        ("[solve]\nengine = 'llama'\n", r"\[solve\] 'engine': unknown value 'llama' \(did you mean 'llamacpp'\?\)"),
        ("train = 3\n", r"'train' must be a section, \[train\]"),
        ("epochs = [\n", "not valid TOML"),
    ],
)
def test_config_errors(tmp_path, text, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(SocraticError, match=message):
        load_config(bad)


def test_a_vote_over_decompositions_is_a_run_of_the_pair_alone():
    sampled = {"solve": {"samples": 5, "qg_temperature": 0.7}}
    with pytest.raises(SocraticError, match=r"qg_temperature samples the question generator, which cot do not"):
        config_from_values({"methods": ["cot", "iterative"], **sampled})
    pair = config_from_values({"methods": ["iterative"], **sampled})
    [solve] = [c for key, c in stage_configs(pair, RunFolder(Path("RUN"))).items() if key.startswith("solve")]
    assert solve.decoding.qg_sampling.temperature == 0.7 and solve.decoding.sampling.temperature == 0


def test_a_missing_config_file(tmp_path):
    with pytest.raises(SocraticError, match="config file not found"):
        load_config(tmp_path / "missing.toml")


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


# --- issue 35: hostile config files and damaged state files ------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "x"\nmethods = ' + "[" * 500 + "]" * 500 + "\n", r"bad.toml: not valid TOML \(nested"),
        ("[train]\nmax_length = " + "{a=" * 500 + "1" + "}" * 500 + "\n", r"bad.toml: not valid TOML \(nested"),
        ("[train]\n" + ".".join(["a"] * 500) + " = 1\n", r"bad.toml: not valid TOML \(nested more than 64"),
        ("methods = []\n", r"bad.toml: 'methods': must name at least one of: answer, cot"),
        ('methods = ["cot", "unified", "cot"]\n', r"bad.toml: 'methods': 'cot' is named twice"),
        (
            '[train]\nmodel = "' + "x" * 100_000 + '"\n[solve]\nengine = ' + "[1]" + "\n",
            r"expected a string, not \[1\]$",
        ),
        (
            "[annotate]\nlimit = [" + "1," * 100_000 + "]\n",
            r"expected a whole number, not \[1, 1, 1, 1, 1, 1, \.\.\.\]$",
        ),
    ],
    ids=["500-deep-array", "500-deep-table", "500-dotted-keys", "no-methods", "a-method-twice", "long", "huge-list"],
)
def test_hostile_config_files_are_one_line_before_any_work(tmp_path, text, message):
    """A 500-deep array or inline table was a RecursionError; `methods = []` annotated first and failed
    afterwards; a repeated method was accepted."""
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(SocraticError, match=message) as raised:
        load_config(bad)
    assert len(str(raised.value)) < 300  # one readable line, whatever the file holds


def test_a_stage_commands_config_is_checked_the_same_way(tmp_path, capsys):
    from socratic.cli import main

    bad = tmp_path / "deep.toml"
    bad.write_text("[train]\nmax_length = " + "{a=" * 500 + "1" + "}" * 500 + "\n")
    argv = ["train", "--config", str(bad), "--method", "unified", "--chains", "c.jsonl", "--out", str(tmp_path / "s")]
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines() == [f"socratic: error: {bad}: not valid TOML (nested too deeply)"]


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
