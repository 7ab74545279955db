"""Training (`training.train`): every mode learns and reloads, LoRA merges, bad inputs and trackers are
one line, the schedules, a user's own file or hub id; resuming is test_resume.py, the loss
test_trainer.py, several processes test_processes.py.

Uses a tiny randomly initialised Llama built on SmolLM2's real tokenizer (its first 2,048 words), so each
run takes seconds.
"""

import dataclasses
import json

import pytest
import torch

from socratic.core.errors import SocraticError
from socratic.core.jsonl import write_jsonl
from socratic.core.records import Chain, Step
from socratic.training.data import load_pieces
from socratic.training.train import run_train
from socratic.weights import models
from socratic.weights.student_folder import read_info
from tests.training.runs import check_trained_student, losses_of, quick


@pytest.fixture(params=["tiny", pytest.param("smollm2-135m", marks=pytest.mark.slow)])
def base(request, tiny_model):
    """What a training test starts from, one test body for both tiers: the tiny random Llama (fast) and
    the real SmolLM2-135M weights (slow), each with a learning rate it learns from in a few steps."""
    if request.param == "tiny":
        return {"model": str(tiny_model), "learning_rate": 3e-3}
    return {"model": str(models.resolve(request.param)), "learning_rate": 1e-4}


@pytest.mark.parametrize("mode", ["cot", "unified"])
def test_a_mode_trains_and_reloads(base, chains_file, tmp_path, mode):
    # Three short steps on one thread; the loss goes down, not yet far. The other roles train in the fast
    # tier too: answer and iterative (QG + QA) in test_the_whole_pipeline_on_a_tinier_config, QG and QA in
    # test_iterative_writes_qg_and_qa.
    out = run_train(
        quick(
            base["model"],
            chains_file,
            tmp_path / mode,
            method=mode,
            max_steps=3,
            max_length=256,
            threads=1,
            learning_rate=base["learning_rate"],
        )
    )
    rows = [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows]
    assert len(losses) == 3 and losses[-1] < losses[0], losses
    seconds = [r["seconds"] for r in rows]  # when each loss was logged: steady-state speed is read off these
    assert 0 < seconds[0] < seconds[1] < seconds[2], seconds
    check_trained_student(out, base["model"], mode)


def test_iterative_writes_qg_and_qa(tiny_model, chains_file, tmp_path):
    out = run_train(
        quick(tiny_model, chains_file, tmp_path / "it", method="iterative", max_steps=1, max_length=256, threads=1)
    )
    assert read_info(out / "qg").role == "qg"
    assert read_info(out / "qa").role == "qa"


def test_lora_merges_into_a_plain_checkpoint(base, chains_file, tmp_path):
    from transformers import AutoModelForCausalLM

    out = run_train(
        quick(base["model"], chains_file, tmp_path / "lora", lora_r=8, max_steps=1, max_length=256, threads=1)
    )
    assert (out / "adapter" / "adapter_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(out)
    assert not any("lora" in name for name in model.state_dict())


def test_bad_inputs(tiny_model, chains_file, tmp_path):
    with pytest.raises(SocraticError, match="chains file not found"):
        run_train(quick(tiny_model, tmp_path / "none.jsonl", tmp_path / "o"))
    cot = write_jsonl(tmp_path / "cot.jsonl", [Chain("gsm8k/train/0", "cot", (), "72", True, "human")])
    with pytest.raises(SocraticError, match="role 'qg' needs socratic chains"):
        load_pieces(quick(tiny_model, cot, tmp_path / "o", method="qg"), "qg")
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "socratic.json").write_text(json.dumps({"mode": "unified", "format_version": 0}))
    with pytest.raises(SocraticError, match="retrain it"):
        read_info(tmp_path / "ck")


def test_train_reads_a_users_csv_with_other_column_names(tiny_model, tmp_path, capsys):
    """The data options are the same for every command: a CSV whose columns are not question/answer
    trains as it annotates and solves."""
    from socratic.cli import main

    data = tmp_path / "mine.csv"
    data.write_text("uid,prompt,target\na,What is 2 + 3?,5\nb,What is 4 * 2?,8\n")
    chains = write_jsonl(
        tmp_path / "chains.jsonl",
        [
            Chain(f"mine/all/{uid}", "cot", (Step("", text),), answer, True, "human")
            for uid, text, answer in (("a", "2 + 3 = 5.", "5"), ("b", "4 * 2 = 8.", "8"))
        ],
    )
    fields = ["--dataset", str(data), "--question-field", "prompt", "--answer-field", "target", "--id-field", "uid"]
    argv = [
        "train",
        "--method",
        "cot",
        "--chains",
        str(chains),
        "--model",
        str(tiny_model),
        "--out",
        str(tmp_path / "cot"),
        "--max-steps",
        "1",
        "--batch-size",
        "1",
        "--max-length",
        "128",
        *fields,
    ]
    assert main(argv) == 0, capsys.readouterr().err
    assert read_info(tmp_path / "cot").examples == 2
    assert main(argv[: argv.index("--dataset")]) == 2  # without them the file's problems are unknown
    assert "not a shipped benchmark: give --dataset" in capsys.readouterr().err


def test_a_hub_id_trains_from_the_hub_cache(hub, chains_file, tmp_path):
    out = run_train(quick("tiny-org/tiny-llama", chains_file, tmp_path / "hub", max_steps=1, max_length=256, threads=1))
    assert read_info(out).base_model == "tiny-org/tiny-llama"
    assert (out / "model.safetensors").is_file()


def test_a_loss_that_is_no_longer_a_number_stops_training_keeping_the_last_finite_checkpoint(
    tiny_model, chains_file, tmp_path
):
    """A learning rate of 1e308 used to end in "last loss nan", exit 0, and a student of NaN weights."""
    out = tmp_path / "s"
    # Warm-up: the first step's rate is 0, so checkpoint-1 is finite; the second step's 1e308 is not.
    config = quick(tiny_model, chains_file, out, method="unified", learning_rate=1e308, warmup_ratio=0.5)
    config = dataclasses.replace(config, max_steps=4, save_steps=1)
    with pytest.raises(SocraticError, match=r"training diverged at step 2: .*checkpoint-1 \(step 1\) is the last"):
        run_train(config)
    assert not (out / "model.safetensors").exists()  # no student of NaN weights
    kept = sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*"))
    assert kept == ["checkpoint-1"]
    from safetensors.torch import load_file

    assert all(
        torch.isfinite(t).all() for t in load_file(out / "checkpoints" / "checkpoint-1" / "model.safetensors").values()
    )


def test_report_to_tensorboard_writes_the_loss_and_learning_rate(tiny_model, chains_file, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = run_train(
        quick(tiny_model, chains_file, tmp_path / "tb", max_steps=3, max_length=256, threads=1, report_to="tensorboard")
    )
    (events,) = {path.parent for path in (out / "checkpoints" / "runs").rglob("events.out.tfevents.*")}
    board = EventAccumulator(str(events))
    board.Reload()
    losses = [event.value for event in board.Scalars("train/loss")]
    rates = [event.value for event in board.Scalars("train/learning_rate")]
    assert [event.step for event in board.Scalars("train/loss")] == [1, 2, 3]
    recorded = losses_of(out)
    assert losses == pytest.approx(recorded, rel=1e-5), "tensorboard shows the loss loss.jsonl records"
    assert len(rates) == 3 and rates[0] == pytest.approx(3e-3, rel=1e-4)


def test_report_to_is_checked(tiny_model, chains_file, tmp_path):
    with pytest.raises(SocraticError, match=r"report_to.*mlflow"):
        quick(tiny_model, chains_file, tmp_path / "x", report_to="mlflow")


def test_report_to_a_tracker_that_is_not_installed_is_one_line(tiny_model, chains_file, tmp_path, capsys):
    import importlib.util

    from socratic.cli import main

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    argv = ["train", "--chains", str(chains_file), "--model", str(tiny_model), "--out", str(tmp_path / "s")]
    assert main([*argv, "--report-to", "wandb"]) == 2
    assert "pip install wandb" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_compiled_training_compiles_once_for_all_its_steps(tiny_model, chains_file, tmp_path):
    """--torch-compile pads every step's batch to one length and leaves out the per-step example bounds:
    3 steps compile no more graphs than 1 (padding-free batches change length every step, and each new
    length was a recompile)."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    graphs = []
    for steps in (1, 3):
        torch._dynamo.reset()
        counters.clear()
        run_train(
            quick(
                tiny_model,
                chains_file,
                tmp_path / f"c{steps}",
                max_steps=steps,
                max_length=256,
                torch_compile=True,
                threads=1,
            )
        )
        graphs.append(counters["stats"]["unique_graphs"])
    torch._dynamo.reset()
    assert graphs[0] > 0 and graphs[1] == graphs[0], graphs


def test_the_learning_rate_schedule_after_the_warm_up(tiny_model, chains_file, tmp_path):
    import math

    def rates(schedule: str) -> list[float]:
        out = tmp_path / schedule
        run_train(quick(tiny_model, chains_file, out, max_steps=4, threads=1, max_length=256, lr_schedule=schedule))
        return [json.loads(line)["learning_rate"] for line in (out / "loss.jsonl").read_text().splitlines()]

    peak = 3e-3  # quick's rate, no warm-up; step s (0-3) of 4 is logged with the rate it used
    assert rates("linear") == pytest.approx([peak * (1 - s / 4) for s in range(4)])
    assert rates("cosine") == pytest.approx([peak * 0.5 * (1 + math.cos(math.pi * s / 4)) for s in range(4)], abs=1e-12)
    assert rates("constant") == pytest.approx([peak] * 4)
    with pytest.raises(SocraticError, match="lr_schedule"):  # a checkpoint of another schedule is not resumed
        (tmp_path / "cosine" / "socratic.json").unlink()
        run_train(quick(tiny_model, chains_file, tmp_path / "cosine", max_steps=5, threads=1, max_length=256))
