"""Issue 35, item 4: max_length is bounded by the model's positions and by the machine, before any work."""

import pytest

from socratic.core.config import build
from socratic.core.errors import SocraticError
from socratic.core.jsonl import write_jsonl
from socratic.tasks import gsm8k
from socratic.teacher.human import human_chain
from socratic.training import limits
from socratic.training.config import TrainConfig
from socratic.training.train import run_train


@pytest.fixture
def chains(tmp_path):
    problems = gsm8k.load("train")[:2]
    rows = [human_chain(p, "socratic") for p in problems]
    return write_jsonl(tmp_path / "chains.jsonl", rows)


def train_config(tiny_model, chains, out, **overrides) -> TrainConfig:
    values = dict(chains=str(chains), model=str(tiny_model), out=str(out), max_steps=1, batch_size=1)
    return build(TrainConfig, {**values, **overrides})


def test_a_row_longer_than_the_models_positions_is_refused_before_training(tiny_model, chains, tmp_path):
    config = train_config(tiny_model, chains, tmp_path / "s", method="unified", max_length=1_000_000_000)
    with pytest.raises(
        SocraticError, match=r"max_length 1,000,000,000 is more than the 1,024 positions of .*: give at"
    ):
        run_train(config)
    assert not (tmp_path / "s").exists()  # nothing was started


def test_a_step_larger_than_the_machine_is_refused(tiny_model, chains, tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "physical_memory", lambda: 2**29)  # a 0.5 GiB machine
    config = train_config(
        tiny_model, chains, tmp_path / "s", method="unified", max_length=1024, batch_size=64, micro_batch=64
    )
    # 64 x 1,024 tokens x 2,048 logits (the tiny model's words) x 8 bytes = 1 GiB at least
    refusal = r"64 rows a pass .*: one training step needs at least 1\.\d GiB, and this machine has 0\.5 GiB"
    with pytest.raises(SocraticError, match=refusal):
        run_train(config)


def test_the_memory_floor_lets_the_shipped_cpu_configs_run_on_a_16_gib_machine():
    # SmolLM2-135M: 49,152 tokens, 538 MB of float32 weights; batch 4 x 1,024 (cpu-gsm8k)
    assert limits.step_memory_floor(4, 1024, 49152, 538_000_000) < 16 * 2**30
