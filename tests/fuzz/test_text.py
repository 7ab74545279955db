"""Any text a student may write, through the calculator and the answer readers: a value or a one-line
error, in bounded time."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import strategies as st

from socratic.text import answers, calculator
from tests.bounds import cpu_seconds_under
from tests.fuzz.properties import TEXT_CPU_SECONDS, both_profiles, expressions, run


def calculator_gives_a_value_or_its_error_in_bounded_time(expression: str) -> None:
    with cpu_seconds_under(TEXT_CPU_SECONDS):
        try:
            value = calculator.evaluate(expression)
        except calculator.CalculatorError as e:
            assert "\n" not in str(e)
        else:
            assert isinstance(value, Fraction) and abs(value) <= calculator.MAX_MAGNITUDE
            calculator.calculate(expression)  # and it prints
        # What a student writes reaches the calculator as an open or a closed annotation.
        calculator.complete_open_annotation(f"so <<{expression}=")
        for annotation in calculator.find_annotations(f"<<{expression}={expression}>>"):
            assert annotation.correct in (True, False)


@both_profiles
def test_calculator_contract(profile):
    run(profile, calculator_gives_a_value_or_its_error_in_bounded_time, expressions())


_numberish = st.text(alphabet="0123456789.,/-−$%eE +", max_size=300)
_any_text = st.one_of(_numberish, st.text(max_size=200), st.builds(lambda n: "9" * n, st.integers(0, 6000)))


def answers_are_read_or_missing_in_bounded_time(text: str) -> None:
    with cpu_seconds_under(TEXT_CPU_SECONDS):
        for extract in (answers.extract_number, answers.extract_yes_no, answers.normalize_number):
            found = extract(text)
            assert found is None or isinstance(found, str)
        assert isinstance(answers.normalize_answer(text), str)
        assert answers.answers_match(text, "72") in (True, False)
        try:
            answers.normalize_gold(text)
        except ValueError as e:
            assert "\n" not in str(e)


@both_profiles
def test_answer_contract(profile):
    run(profile, answers_are_read_or_missing_in_bounded_time, _any_text)
