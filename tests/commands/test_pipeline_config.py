"""The run's config file (`commands.pipeline.load_config`): the shipped configs load and give the
stages what they gave before; a mistake or a hostile file (issue 35) is one line naming it, before any
work, for `socratic run` and the stage commands alike."""

import dataclasses
import json
from pathlib import Path

import pytest

from socratic.commands.pipeline import config_from_values, load_config, stage_configs
from socratic.commands.run_folder import RunFolder
from socratic.core.errors import SocraticError

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
