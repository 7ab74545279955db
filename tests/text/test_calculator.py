"""The calculator: exact arithmetic, and refusal (fast) of everything that is not arithmetic."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from socratic.tasks import gsm8k
from socratic.text.calculator import (
    MAX_MAGNITUDE,
    CalculatorError,
    calculate,
    complete_open_annotation,
    evaluate,
    find_annotations,
)
from tests.bounds import cpu_seconds_under


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("48/2", "24"),
        ("48+24", "72"),
        ("12/60", "0.2"),
        ("0.2*50", "10"),
        ("0.1+0.2", "0.3"),
        ("10/3*3", "10"),
        ("10/3", "3.333333"),
        ("(2+3)*4", "20"),
        ("-5+2", "-3"),
        ("2**10", "1024"),
        ("2**-3", "0.125"),
        ("7//2", "3"),
        ("10 % 3", "1"),
        ("15%*80", "12"),
        ("20%", "0.2"),
        ("1,200*2", "2400"),
        ("$5*3", "15"),
        ("3×4", "12"),
        ("12÷4", "3"),
        ("2**0.5", "1.414214"),
        ("1e3", "1000"),
        ("  4 - 1 ", "3"),
    ],
)
def test_evaluates_arithmetic(expression, value):
    assert calculate(expression) == value


ADVERSARIAL = [
    "__import__('os').system('echo pwned')",
    "open('/etc/passwd').read()",
    "exec('1')",
    "x",
    "a+1",
    "(1).__class__",
    "[1, 2]",
    "{1: 2}",
    "'a'*3",
    "b'1'",
    "lambda: 1",
    "1 if 1 else 2",
    "1 < 2",
    "not 1",
    "1 and 2",
    "~1",
    "1 << 2",
    "1 | 2",
    "1 @ 2",
    "f'{1}'",
    "1j",
    "True + 1",
    "None",
    "9**9**9",
    "10**10**10",
    "2**1000000",
    "(-2)**0.5",
    "10**19",
    "1e300",
    "9" * 300,
    "(" * 100 + "1" + ")" * 100,
    "-" * 200 + "1",
    "1/0",
    "1//0",
    "1%0",
    "0**-1",
    "",
    "   ",
    "1 +",
    "1;2",
    "import os",
    "1\n+2",
    "\x00",
    "(" * 1000,
]


@pytest.mark.parametrize("expression", ADVERSARIAL)
def test_refuses_everything_else_quickly(expression):
    # A generous bound: the point is that nothing is computed before the size checks.
    with cpu_seconds_under(0.5), pytest.raises(CalculatorError):
        evaluate(expression)


# Each of these once hung for minutes or escaped as ValueError/OverflowError (issue 18).
HOSTILE = [
    ("1.0000001**10000000", "2.718282"),  # exact, a 70-million-digit fraction; now a float power
    ("1.001**30000", "10527478897860.058594"),
    ("1.005**360", "6.022575"),  # a mortgage's growth factor: too precise to keep exact
    ("(-1.0000001)**10000001", "-2.718282"),
    ("0.5**-59", "576460752303423488"),
    ("1**1000000000000000000", "1"),
    ("(-1)**999999999999999999", "-1"),
    ("1e-400", "0"),  # underflows to 0.0 as a Python literal
    ("1e309", None),  # inf as a Python literal
    ("-1e309", None),
    ("1e308*10", None),
    ("1.0000001**10**18", None),
    ("2**-1000", None),
    ("10**-41", None),
    ("(1/3)**100", None),
    ("(10**18)**(1/2)", "1000000000"),
    ("0.1**0.5", "0.316228"),
    ("2**0.5**0.5**0.5", "1.528956"),
    ("(10**18-1)*(10**18-1)", None),
    ("1/3/3/3/3/3/3/3/3/3/3/3/3/3/3/3/3/3/3/3/3/3/3/3/3", "0"),
    ("(0.1**9)**9", None),
    ("1" + "0" * 255, None),
    ("1e-300", None),
    ("5e-324", None),
]


@pytest.mark.parametrize(("expression", "value"), HOSTILE)
def test_hostile_powers_and_literals_give_a_value_or_an_error_quickly(expression, value):
    # Each takes about a millisecond of CPU time; the bound is generous, yet far below the minutes
    # these once took.
    with cpu_seconds_under(0.5):
        try:
            result = calculate(expression)
        except CalculatorError:
            result = None
    assert result == value


def test_refuses_results_that_grow_too_large():
    with pytest.raises(CalculatorError, match="too large"):
        evaluate("999999999*999999999*999999999")


_small = st.integers(min_value=-(10**6), max_value=10**6)


@given(_small, _small, _small)
def test_matches_exact_python_arithmetic(a, b, c):
    assert evaluate(f"{a} + {b} * ({c})") == a + b * c
    if b != 0:
        assert evaluate(f"({a} - {c}) / {b}") == Fraction(a - c, b)
        assert evaluate(f"{a} // {b}") == a // b
        assert evaluate(f"{a} % {b}") == a % b


@given(st.text(max_size=60))
def test_arbitrary_text_never_escapes(text):
    try:
        value = evaluate(text)
    except CalculatorError:
        return
    assert isinstance(value, Fraction) and abs(value) <= MAX_MAGNITUDE


def test_every_gsm8k_training_annotation_checks_out():
    """All 23,716 annotations of the GSM8K training solutions agree with the calculator (to the
    precision the annotator wrote), so the calculator can be trusted to rewrite a student's."""
    annotations = [a for p in gsm8k.load("train") for s in p.human_steps for a in find_annotations(s.answer)]
    assert len(annotations) == 23_716
    wrong = [a for a in annotations if not a.correct]
    assert not wrong, wrong[:5]


def test_find_annotations_reports_wrong_and_refused_arithmetic():
    found = find_annotations("so 3*4=<<3*4=13>>13 and <<x+1=2>>2 and <<10/3=3.33>>3.33")
    assert [(a.value, a.correct) for a in found] == [("12", False), (None, False), ("3.333333", True)]
    assert "Name" in found[1].error


def test_complete_open_annotation():
    assert complete_open_annotation("She makes 9 * 2 = $<<9*2=") == "18"
    assert complete_open_annotation("She makes <<9*2=18>>18") is None
    assert complete_open_annotation("bad <<__import__('os')=") is None
