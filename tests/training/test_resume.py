"""Resuming a training: a killed run goes on from its last checkpoint as it would have, only with the
recipe that started it (speed options aside); a finished student is skipped, and one being trained
elsewhere is not trained twice."""

import functools
import json

import pytest

from socratic.core.errors import SocraticError
from socratic.core.locks import holding_lock
from socratic.training.config import TrainConfig
from socratic.training.train import run_train
from socratic.weights.student_folder import read_info
from tests.training.runs import losses_of, quick


def test_resume_continues_from_the_saved_step(tiny_model, chains_file, tmp_path):
    # 3 steps with checkpoints every 2 and none at the end, then 5: the later run starts from step 2, not
    # from scratch, and keeps a checkpoint of its end (`socratic train`'s default; `quick` turns it off).
    # Also a cheap place to check that activations are recomputed only when asked (TRL's SFTConfig turns
    # that on unless told otherwise), and with --recompute-every 2 for every other layer only.
    out = tmp_path / "resume"
    short = dict(save_steps=2, max_length=256, threads=1)
    run_train(quick(tiny_model, chains_file, out, max_steps=3, **short))
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["activation_checkpointing"], manifest["recomputed_layers"]) == (False, 0)
    recomputing = dict(gradient_checkpointing=True, recompute_every=2)
    at_the_end = dict(final_checkpoint=TrainConfig.final_checkpoint)  # `socratic train`'s default (on)
    run_train(quick(tiny_model, chains_file, out, max_steps=5, **at_the_end, **recomputing, **short))
    steps = [json.loads(line)["step"] for line in (out / "loss.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]
    state = json.loads((out / "checkpoints" / "checkpoint-5" / "trainer_state.json").read_text())
    assert state["global_step"] == 5
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["activation_checkpointing"], manifest["recomputed_layers"]) == (True, 1)  # of its 2 layers


def test_a_killed_training_is_not_resumed_by_another_recipe(tiny_model, chains_file, tmp_path):
    out = tmp_path / "killed"
    quick = functools.partial(globals()["quick"], max_length=256, threads=1)
    run_train(quick(tiny_model, chains_file, out, max_steps=2, save_steps=1))
    for finished in ("socratic.json", "model.safetensors"):  # as if killed after its checkpoints
        (out / finished).unlink()
    with pytest.raises(SocraticError, match=r"checkpoints made with other settings \(role: 'unified', now 'answer'\)"):
        run_train(quick(tiny_model, chains_file, out, method="answer", max_steps=2, save_steps=1))
    with pytest.raises(SocraticError, match="learning_rate"):
        run_train(quick(tiny_model, chains_file, out, max_steps=2, save_steps=1, learning_rate=1e-3))
    run_train(quick(tiny_model, chains_file, out, max_steps=3, save_steps=1))  # longer: the same run goes on
    assert read_info(out).trained_for["max_steps"] == 3


def test_a_qg_trains_with_a_decision_weight_and_resumes_only_with_it(tiny_model, chains_file, tmp_path):
    out = tmp_path / "qg"
    quick_qg = functools.partial(quick, tiny_model, chains_file, out, method="qg", max_length=256, threads=1)
    run_train(quick_qg(max_steps=2, save_steps=1, decision_weight=5.0))
    losses = losses_of(out)
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
    for finished in ("socratic.json", "model.safetensors"):  # as if killed after its checkpoints
        (out / finished).unlink()
    with pytest.raises(SocraticError, match="decision_weight"):
        run_train(quick_qg(max_steps=3, save_steps=1))


def test_rerunning_a_finished_student_skips_it(tiny_model, chains_file, tmp_path):
    out = run_train(quick(tiny_model, chains_file, tmp_path / "done", max_steps=1, max_length=256, threads=1))
    weights = (out / "model.safetensors").stat().st_mtime_ns
    run_train(quick(tiny_model, chains_file, out, max_steps=1, max_length=256, threads=1))
    assert (out / "model.safetensors").stat().st_mtime_ns == weights
    with pytest.raises(SocraticError, match="different student"):
        run_train(quick(tiny_model, chains_file, out, method="answer", max_steps=1, max_length=256, threads=1))


def test_a_student_folder_being_trained_elsewhere_is_not_trained_twice(tiny_model, chains_file, tmp_path):
    out = tmp_path / "busy"
    config = quick(tiny_model, chains_file, out, max_steps=1, max_length=256, threads=1)
    with holding_lock(out / "checkpoints.lock", "held by the test"):  # as another process training it holds it
        with pytest.raises(SocraticError, match=r"busy is being trained by another process: wait for it to end"):
            run_train(config)
        assert not (out / "checkpoints").exists() and not (out / "model.safetensors").exists()
    run_train(config)  # free again
    assert (out / "model.safetensors").is_file() and not (out / "checkpoints.lock").exists()


def test_a_killed_training_resumes_with_other_speed_options_and_goes_on_as_it_would_have(
    tiny_model, chains_file, tmp_path, caplog
):
    """Issue 33: a long run started with one speed recipe continues with another. The speed options
    (optimizer kernel, packed attention, rows a pass) are not in the resume recipe, and they change no
    arithmetic beyond rounding: the switched run's losses are the straight run's (one row a pass, a
    CPU's default, against both of the batch's rows at once)."""
    quick_run = functools.partial(quick, tiny_model, chains_file, max_length=256, threads=1, save_steps=1)
    straight, switched = tmp_path / "straight", tmp_path / "switched"
    run_train(quick_run(straight, max_steps=4))
    run_train(quick_run(switched, max_steps=2, fused_optimizer=False, packed_attention=False, micro_batch=2))
    for finished in ("socratic.json", "model.safetensors"):  # as if killed after its checkpoints
        (switched / finished).unlink()
    run_train(quick_run(switched, max_steps=4))
    assert "resuming from" in caplog.text

    assert len(losses_of(switched)) == 4
    assert losses_of(switched) == pytest.approx(losses_of(straight), rel=0.02)  # bf16 autocast where native
    assert json.loads((straight / "manifest.json").read_text())["rows_per_pass"] == 1
