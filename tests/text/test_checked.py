"""The one door for text entering a tokenizer (issue 35): what a tokenizer cannot read is one line."""

import pytest

from socratic.core.errors import SocraticError
from socratic.text.checked import tokenizable


def test_text_passes_unchanged():
    for text in ("Tom has 3 apples.", "café ☕ 𝑥²", "", "a\x00b\x1b[31m"):
        assert tokenizable(text) is text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("\ud800", r"the problem holds a lone UTF-16 surrogate \\ud800 \(character 1\), not text"),
        ("ab\udfff", r"lone UTF-16 surrogate \\udfff \(character 3\)"),
        (b"caf\xe9".decode("utf-8", "surrogateescape"), r"the problem is not UTF-8 text \(byte 0xe9 at character 4\)"),
        (b"\xff\xfe".decode("utf-8", "surrogateescape"), r"not UTF-8 text \(byte 0xff at character 1\)"),
        (None, "the problem must be text, not NoneType"),
    ],
)
def test_what_no_tokenizer_reads_is_one_line(text, message):
    with pytest.raises(SocraticError, match=message):
        tokenizable(text, "the problem")


def test_a_real_tokenizer_would_have_failed_on_it(tiny_decoder):
    """Why the door exists: the tokenizers library raises a TypeError, not an error a user can read."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_decoder)
    with pytest.raises(TypeError):
        tokenizer("\ud800")
