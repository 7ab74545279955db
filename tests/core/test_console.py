"""What the commands show: the libraries' bars silenced unless -v."""

import importlib

from socratic.core import console

GGUF_LOADER = "transformers.modeling_gguf_pytorch_utils"  # draws "Converting and de-quantizing GGUF tensors"


def test_the_gguf_loaders_own_bar_is_silenced_with_the_other_library_bars(monkeypatch, capsys):
    loader = importlib.import_module(GGUF_LOADER)
    monkeypatch.setattr(loader, "tqdm", loader.tqdm)  # (restored after the test)
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)  # -v: every bar kept
    console.quiet_bar_of(GGUF_LOADER)
    list(loader.tqdm(range(3), desc="Converting"))
    assert "Converting" in capsys.readouterr().err
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # as quiet_libraries sets it
    console.quiet_bar_of(GGUF_LOADER)
    console.quiet_bar_of(GGUF_LOADER)
    assert list(loader.tqdm(range(3), desc="Converting")) == [0, 1, 2]
    assert capsys.readouterr().err == ""
