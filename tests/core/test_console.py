"""What the commands show: the libraries' bars silenced unless -v, and text printed to a terminal that
cannot drive it (issue 35): model output and error lines are shown, never obeyed."""

import importlib

from socratic.core import console
from socratic.core.console import terminal_safe

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


def test_control_sequences_are_shown_as_escapes():
    written = "A: 3\x1b[2J\x1b]0;owned\x07 apples\rAnswer: 5\x9b31m\u202eevil\x00"
    assert terminal_safe(written) == "A: 3\\x1b[2J\\x1b]0;owned\\x07 apples\\rAnswer: 5\\x9b31m\\u202eevil\\x00"


def test_text_lines_and_unicode_stay_as_they_are():
    text = "Q: How many?\n\tA: 12 × 3 = 36 €, naïve, 数学 𝑥²\n"
    assert terminal_safe(text) == text
