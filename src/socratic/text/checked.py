"""The one door for text that a tokenizer will read: a problem typed to `ask`, a request to `serve`,
a prompt an engine encodes.

    tokenizable("Tom has 3 apples", "the problem")      # -> the text, unchanged
    tokenizable("caf\\udce9", "the problem")            # -> SocraticError: not UTF-8 text (byte 0xe9 ...)

Python strings can hold what no tokenizer takes: lone UTF-16 surrogates, from JSON's "\\ud800" or
from bytes that are not UTF-8 read with `surrogateescape` (stdin and argv in a C locale). Given one,
the tokenizers library raises a `TypeError` deep inside a batch, failing every other request of that
batch with it; here it is one line naming what was wrong, before it joins any batch.
"""

from __future__ import annotations

import re

from socratic.core.errors import SocraticError

_SURROGATE = re.compile("[\ud800-\udfff]")


def tokenizable(text: str, what: str = "the text") -> str:
    """`text` if a tokenizer can read it, else a `SocraticError` saying why (`what` names it)."""
    if not isinstance(text, str):
        raise SocraticError(f"{what} must be text, not {type(text).__name__}")
    found = _SURROGATE.search(text)
    if found is None:
        return text
    code = ord(found.group())
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as `surrogateescape` keeps it
        raise SocraticError(f"{what} is not UTF-8 text (byte 0x{code - 0xDC00:02x} at character {found.start() + 1})")
    raise SocraticError(f"{what} holds a lone UTF-16 surrogate \\u{code:04x} (character {found.start() + 1}), not text")
