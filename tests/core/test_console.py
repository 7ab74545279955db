"""Text printed to a terminal cannot drive it (issue 35): model output and error lines are shown, never obeyed."""

from socratic.core.console import terminal_safe


def test_control_sequences_are_shown_as_escapes():
    written = "A: 3\x1b[2J\x1b]0;owned\x07 apples\rAnswer: 5\x9b31m\u202eevil\x00"
    assert terminal_safe(written) == "A: 3\\x1b[2J\\x1b]0;owned\\x07 apples\\rAnswer: 5\\x9b31m\\u202eevil\\x00"


def test_text_lines_and_unicode_stay_as_they_are():
    text = "Q: How many?\n\tA: 12 × 3 = 36 €, naïve, 数学 𝑥²\n"
    assert terminal_safe(text) == text
