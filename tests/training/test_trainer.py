"""The trainer's hardware switches (`training.trainer`), apart from training itself (test_train.py)."""

import pytest

from socratic.training import trainer


@pytest.mark.parametrize("native", [True, False])
def test_bf16_follows_the_hardware_unless_asked_and_emulated_bf16_is_warned_about(native, monkeypatch, caplog):
    monkeypatch.setattr(trainer, "native_bf16", lambda gpu: native)
    assert trainer.training_bf16(None, gpu=False) is native
    assert trainer.training_bf16(False, gpu=False) is False
    assert not caplog.records
    assert trainer.training_bf16(True, gpu=False) is True  # honoured either way: the user asked
    assert ("emulated here" in caplog.text) is not native
