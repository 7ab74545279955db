"""Safe arithmetic for GSM8K-style calculator annotations, `<<48/2=24>>`.

    python -c "from socratic.text.calculator import calculate; print(calculate('48/2 + 3*(4-1)'))"   # 33

Students (and teachers) write `<<expression=value>>` in their solutions; the calculator computes
the true value so that generation can write it in, as in GSM8K's own verifier setup, and so that
evaluation can tell wrong arithmetic from wrong reasoning.

It never executes code. The expression is parsed with `ast` and walked node by node, accepting only
numbers, parentheses, unary + and -, and the binary operators + - * / // % **. Names, calls,
attributes, strings, comparisons and everything else are rejected with `CalculatorError`. Work is
bounded before it is done: the text length, the nesting depth, the size of every literal and
intermediate result, and the result of `**` (its magnitude and its exact digits, both estimated
from logarithms *before* computing it, so `9**9**9` and `1.0000001**10000000` fail or fall back at
once instead of hanging). Nothing but `CalculatorError` escapes, whatever the text.

Arithmetic is exact (`fractions.Fraction`): `0.1+0.2` is 0.3, and `10/3*3` is 10. Powers are the one
place that falls back to floating point: a fractional exponent (`2**0.5`), or an exact result that
would need more than MAX_EXACT_POWER_DIGITS digits (`1.005**360`, a mortgage's growth factor).

Text conventions accepted besides Python's: thousands separators (`1,200`), a dollar sign, the
signs × and ÷, and a percent sign that ends an expression or comes before ")", "*" or "/"
(`15%*80` is 12); anywhere else (`10 % 3`, `10 % -3`) `%` is the remainder, as in Python and in
GSM8K's annotations.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from socratic.text.answers import format_number, parse_number

MAX_EXPRESSION_CHARS = 256
MAX_DEPTH = 32  # nested parentheses and operators
MAX_MAGNITUDE = Fraction(10) ** 18  # bound on every literal and intermediate result
MAX_DENOMINATOR_DIGITS = 200  # exact fractions may not grow without bound either
MAX_POWER_DIGITS = 40  # |log10| of a power's result, checked before computing it
MAX_EXACT_POWER_DIGITS = MAX_DENOMINATOR_DIGITS  # digits of an exact power's numerator or denominator

ANNOTATION_RE = re.compile(r"<<([^<>=]*)=([^<>]*)>>")
OPEN_ANNOTATION_RE = re.compile(r"<<([^<>=]*)=$")

_BINARY: dict[type[ast.operator], Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
# A percent sign is a percent only where Python could not read it as a remainder: at the end, or
# before ")", "*" or "/". "15%*80" is 12; "15 % 4" and "15 % -4" stay remainders.
_PERCENT_RE = re.compile(r"(\d+(?:\.\d+)?)\s*%(?=\s*(?:$|[)*/]))")
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


class CalculatorError(ValueError):
    """An expression the calculator refuses: not arithmetic, too large, or undefined (x/0)."""


def evaluate(expression: str) -> Fraction:
    """The exact value of an arithmetic expression (a float only for fractional powers)."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    source = _to_python(expression.strip())
    if _paren_depth(source) > MAX_DEPTH:
        raise CalculatorError(f"nested deeper than {MAX_DEPTH} levels")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise CalculatorError(f"not an arithmetic expression: {expression!r}") from e
    return _eval(tree.body, depth=0)


def calculate(expression: str) -> str:
    """The value of an expression as canonical text ("24", "0.2", "3.333333")."""
    return format_number(evaluate(expression))


@dataclass(frozen=True)
class Annotation:
    """One `<<expression=claimed>>` found in a text, with the true value if it can be computed."""

    expression: str
    claimed: str
    value: str | None  # None when the calculator refused the expression
    error: str | None

    @property
    def correct(self) -> bool:
        claimed = parse_number(self.claimed)
        true = parse_number(self.value) if self.value is not None else None
        if claimed is None or true is None:
            return False
        # Annotators round: "<<10/3=3.33>>" is right. Accept the claim if it agrees to its own precision.
        places = len(self.claimed.split(".", 1)[1]) if "." in self.claimed else 0
        return abs(claimed - true) <= Fraction(1, 2 * 10**places) + Fraction(1, 10**9)


def find_annotations(text: str) -> list[Annotation]:
    """Every calculator annotation in `text`, each checked by the calculator."""
    found = []
    for match in ANNOTATION_RE.finditer(text):
        expression, claimed = match.group(1), match.group(2)
        try:
            found.append(Annotation(expression, claimed, calculate(expression), None))
        except CalculatorError as e:
            found.append(Annotation(expression, claimed, None, str(e)))
    return found


def complete_open_annotation(text: str) -> str | None:
    """The value to write after a text that ends in an open annotation `<<expr=`, if computable.

    Generation calls this each time a model writes "=" inside "<<": the returned value plus ">>"
    is appended in place of the model's own (often wrong) arithmetic.
    """
    match = OPEN_ANNOTATION_RE.search(text)
    if match is None:
        return None
    try:
        return calculate(match.group(1))
    except CalculatorError:
        return None


def _to_python(expression: str) -> str:
    text = expression.replace("×", "*").replace("÷", "/").replace("$", "").replace("−", "-")
    text = _THOUSANDS_RE.sub("", text)
    return _PERCENT_RE.sub(r"(\1/100)", text)


def _paren_depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        depth += char == "("
        depth -= char == ")"
        deepest = max(deepest, depth)
    return deepest


def _eval(node: ast.AST, depth: int) -> Fraction:
    if depth > MAX_DEPTH:
        raise CalculatorError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _literal(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        value = _eval(node.operand, depth + 1)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return _power(_eval(node.left, depth + 1), _eval(node.right, depth + 1))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, depth + 1), _eval(node.right, depth + 1)
        try:
            # Fraction(): `//` between Fractions gives an int, and every result here is a Fraction.
            return _bounded(Fraction(_BINARY[type(node.op)](left, right)))
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
    raise CalculatorError(f"not allowed in arithmetic: {type(node).__name__}")


def _literal(value: int | float) -> Fraction:
    if isinstance(value, float) and not math.isfinite(value):  # "1e309" reads as inf
        raise CalculatorError(f"number too large (over {format_number(MAX_MAGNITUDE)} in magnitude)")
    # repr gives the literal as written ("0.2"), so Fraction is exact, not 0.2000000000000000111.
    return _bounded(Fraction(repr(value)) if isinstance(value, float) else Fraction(value))


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if base == 0:
        if exponent < 0:
            raise CalculatorError("division by zero")
        return Fraction(int(exponent == 0))
    if exponent.denominator != 1 and base < 0:
        raise CalculatorError("fractional power of a negative number")
    # The result's size, from logarithms, before computing anything: 9**9**9 stops here. Logs of the
    # numerator and denominator as ints stay exact where float(base) would underflow.
    numerator_digits, denominator_digits = _log10(base.numerator), _log10(base.denominator)
    result_log10 = float(exponent) * (numerator_digits - denominator_digits)
    if result_log10 > MAX_POWER_DIGITS:
        raise CalculatorError(f"power too large (over {MAX_POWER_DIGITS} digits)")
    if result_log10 < -MAX_POWER_DIGITS:
        raise CalculatorError(f"power too small (under 1e-{MAX_POWER_DIGITS})")
    # An exact power is as long as its base's numerator and denominator times the exponent:
    # 1.0000001**10000000 is a fine number (e) but 70 million digits as a fraction.
    exact_digits = abs(float(exponent)) * max(numerator_digits, denominator_digits)
    if exponent.denominator == 1 and exact_digits <= MAX_EXACT_POWER_DIGITS:
        return _bounded(base**exponent.numerator)
    try:
        return _bounded(Fraction(math.pow(float(base), float(exponent))))
    except (OverflowError, ValueError):  # not expected within the bounds above; refused all the same
        raise CalculatorError("power out of range") from None


def _log10(n: int) -> float:
    return math.log10(abs(n))


def _bounded(value: Fraction) -> Fraction:
    if abs(value) > MAX_MAGNITUDE:
        raise CalculatorError(f"number too large (over {format_number(MAX_MAGNITUDE)} in magnitude)")
    if len(str(value.denominator)) > MAX_DENOMINATOR_DIGITS:
        raise CalculatorError("fraction too precise")
    return value
