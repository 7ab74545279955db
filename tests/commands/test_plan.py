"""`socratic run --dry-run`: the plan (stages, examples, tokens, steps, size, time) and a two-step
rehearsal of every student on a tiny model of its architecture, with nothing written to runs/."""

import json

import pytest

from socratic.cli import main
from socratic.weights import models
from tests.conftest import hub_cache_entry


def write_config(path, model, methods='["unified"]', **train):
    extra = "".join(f"{key} = {json.dumps(value)}\n" for key, value in train.items())
    path.write_text(
        f'name = "plan"\nmethods = {methods}\n'
        '[annotate]\ndataset = "gsm8k"\nsplit = "train"\nteacher = "human"\nlimit = 8\n'
        f'[train]\nmodel = "{model}"\nepochs = 2\nbatch_size = 2\nmax_length = 256\nthreads = 1\n{extra}'
        '[solve]\ndataset = "gsm8k"\nlimit = 4\n'
    )
    return path


def test_dry_run_prints_the_plan_and_rehearses_without_writing_a_run(hub, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path / "plan.toml", "tiny-org/tiny-llama")  # a hub id, from the test's cache
    assert main(["run", "--config", str(config), "--dry-run", "--threads", "1"]) in (0, None)
    out = capsys.readouterr().out
    assert "annotate: 8 chains of gsm8k (the dataset's own)" in out
    assert "train: student tiny-org/tiny-llama, 0.2M parameters, full fine-tuning, 2 epochs" in out
    plan = next(line for line in out.splitlines() if line.strip().startswith("unified    unified"))
    assert "8 examples" in plan and "steps" in plan
    assert "speed measured here:" in out and "solve: 4 problems of gsm8k test" in out
    assert "rehearsal: 2 steps per student on a tiny random llama" in out
    assert "unified    unified  ok: loss" in out and "dry run passed" in out
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_dry_run_of_the_paper_config_counts_gpt2_large(tmp_path, monkeypatch, capsys, tiny_model):
    """The paper's GSM8K config (its unified student, to keep the test short) with gpt2-large's real
    config.json in a hub cache, and SmolLM2's tokenizer standing in for GPT-2's, which is not on this
    machine: 774M parameters, its 7,473 chains planned, a tiny GPT-2 rehearses the student."""
    import dataclasses

    from transformers import AutoTokenizer, GPT2Config

    from socratic.commands.pipeline import load_config
    from socratic.commands.plan import dry_run

    large = tmp_path / "gpt2-large"
    GPT2Config(n_embd=1280, n_layer=36, n_head=20, vocab_size=50257, n_positions=1024).save_pretrained(large)
    AutoTokenizer.from_pretrained(models.resolve("smollm2-135m")).save_pretrained(large)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_cache_entry(tmp_path / "hub", "gpt2-large", large)
    monkeypatch.chdir(tmp_path)
    paper = load_config("paper-gsm8k")
    dry_run(dataclasses.replace(paper, run=dataclasses.replace(paper.run, methods=("unified",))), threads=2)
    out = capsys.readouterr().out
    assert "annotate: 7,473 chains of gsm8k" in out and "student gpt2-large, 774M parameters" in out
    assert "lr 1e-05" in out and "rehearsal: 2 steps per student on a tiny random gpt2" in out
    assert out.count(" ok: loss ") == 1 and "dry run passed" in out


@pytest.mark.slow
def test_dry_run_catches_a_recipe_whose_loss_blows_up(hub, tmp_path, monkeypatch):
    from socratic.core.errors import SocraticError

    monkeypatch.chdir(tmp_path)
    broken = write_config(tmp_path / "broken.toml", "tiny-org/tiny-llama", learning_rate=1e38, warmup_ratio=0)
    with pytest.raises(SocraticError, match="loss is not finite"):
        main_or_raise(["run", "--config", str(broken), "--dry-run", "--threads", "1"])


def main_or_raise(argv):
    from socratic.commands.pipeline import load_config
    from socratic.commands.plan import dry_run

    assert argv[:2] == ["run", "--config"]
    dry_run(load_config(argv[2]), threads=1)


def test_a_run_opens_with_what_it_will_do_and_an_estimate_per_stage(hub, tmp_path, monkeypatch, capsys):
    from socratic.commands.pipeline import load_config
    from socratic.commands.plan import announce

    monkeypatch.chdir(tmp_path)
    config = load_config(write_config(tmp_path / "plan.toml", "tiny-org/tiny-llama", methods='["cot", "iterative"]'))
    estimates = announce(config, tmp_path / "runs" / "plan-1", threads=1)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"socratic run 'plan' -> {tmp_path / 'runs' / 'plan-1'}"
    assert "trains a tiny-org/tiny-llama student for each method (CoT, Socratic (iterative)) on 8 chains" in out[1]
    assert "solves the 4 problems of gsm8k test with each" in out[1]
    stages = [line[4:22].strip() for line in out[2:-1]]  # the stage column
    assert stages == ["annotate", "train cot", "solve cot", "train iterative", "solve iterative", "evaluate"]
    assert "8 + 8 examples" in out[5], "the iterative pair: QG and QA"
    assert set(estimates) == {"annotate", "train cot", "solve cot", "train iterative", "solve iterative", "evaluate"}
    assert estimates["train iterative"] > estimates["train cot"] > 0, "two students train longer than one"
    assert out[-1].startswith("  about ") and " in all here (training " in out[-1]
    assert not (tmp_path / "runs").exists(), "announcing writes nothing"


def test_the_demo_plans_on_its_real_shipped_chains(tmp_path):
    from socratic.commands.pipeline import load_config
    from socratic.commands.plan import planned_chains

    chains, exact = planned_chains(load_config(None), tmp_path / "chains.jsonl")
    assert (len(chains), exact) == (231, True), "no placeholders: the counts and estimates are the run's"
    assert {c.source for c in chains} == {"teacher:qwen2.5-coder-1.5b.gguf"}


@pytest.mark.slow
def test_the_plan_counts_the_steps_the_trainer_takes(tiny_model, tmp_path):
    """1,100 examples, more than the 1,000 TRL packs at a time in its seeded order: the plan packs as the
    trainer does and counts its 111 steps; tokens / max_length, the count before, gave 110."""
    from transformers import AutoTokenizer

    from socratic.commands.plan import plan_student
    from socratic.core.config import build
    from socratic.core.jsonl import write_jsonl
    from socratic.tasks import gsm8k
    from socratic.teacher.human import human_chain
    from socratic.training.config import TrainConfig
    from socratic.training.train import run_train

    chains = [human_chain(p, "socratic") for p in gsm8k.load("train")[:1100]]
    train = build(
        TrainConfig,
        dict(
            chains=str(write_jsonl(tmp_path / "chains.jsonl", chains)),
            model=str(tiny_model),
            method="answer",
            out=str(tmp_path / "answer"),
            epochs=1,
            batch_size=1,
            max_length=1024,
            save_steps=1000,
            final_checkpoint=False,
        ),
    )
    planned = plan_student(train, "answer", "answer", AutoTokenizer.from_pretrained(tiny_model))
    run_train(train)
    trained = json.loads((tmp_path / "answer" / "manifest.json").read_text())["steps"]
    assert planned.steps == trained
    assert planned.rows > -(-planned.tokens // train.max_length)  # the count before (110) falls short


def test_the_speed_line_says_when_other_processes_shared_the_machine():
    from socratic.commands.plan import busy_machine_remark

    assert busy_machine_remark(None) == busy_machine_remark(0.1) == ""
    remark = busy_machine_remark(0.37)
    assert "other processes took 37 % of the cores it ran on meanwhile" in remark and "shared machine" in remark
