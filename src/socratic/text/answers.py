"""Normalise gold answers, extract predicted answers from free text, and compare the two.

    python -c "from socratic.text.answers import extract_number; print(extract_number('pays $1,200.50. #### 1200.5'))"

The rules, in one place so that annotation filtering and evaluation agree:
- **Numbers** are normalised to a canonical decimal string: thousands separators, currency signs,
  a trailing percent sign and trailing zeros go ("$1,200.00" -> "1200", "0.50" -> "0.5",
  "72.0" -> "72"); a fraction becomes its decimal ("3/4" -> "0.75"; a repeating one is rounded to
  6 decimals).
- **Booleans** become "yes" / "no" (true/false, yes/no, in any case).
- **Extraction** from model text is two named filters, as in lm-evaluation-harness:
  `strict` takes the first number (or yes/no) after the *last* answer marker
  ("####", "The answer is", "Answer:", "\\boxed{"); `flexible` takes the last number (or yes/no) in
  the whole text, skipping list numbering ("4. The ..."). `extract_number` / `extract_yes_no` try
  strict, then flexible, and return None when nothing matches: a miss is recorded as a miss, never
  guessed. tests/data/real_outputs.jsonl holds real small-model outputs these rules are tested on.
- **Matching**: two numbers match when |predicted - gold| <= 1e-6 + 1e-4 * |gold|, so "0.3333"
  matches 1/3 but "0.33" does not, and 72.00001 matches 72; anything else must be equal as
  normalised strings, ignoring case ("Paris" matches "paris").
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

ABS_TOLERANCE = Fraction(1, 10**6)
REL_TOLERANCE = Fraction(1, 10**4)
DECIMALS = 6  # places kept when a fraction has no exact short decimal form
MAX_DIGITS = 100  # a number with more digits before or after its point is noise, not an answer
MAX_NUMBER_CHARS = 2 * MAX_DIGITS + 10  # longer text is not read as a number at all
_DECIMAL_RE = re.compile(r"[+-]?(?=\.?\d)(?P<whole>\d*)(?:\.(?P<decimals>\d*))?(?:[eE](?P<exp>[+-]?\d{1,4}))?")

# A number as people and models write it: optional sign and currency, thousands separators,
# decimals, or a simple fraction. Thousands groups must be exactly three digits, so the list
# "3,4,5" reads as three numbers and "1,200" as one.
_NUMBER = r"[-−]?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?/\s?\d+(?:\.\d+)?)?|[-−]?\.\d+"
NUMBER_RE = re.compile(rf"(?<![\w.])(?:{_NUMBER})(?!\d)")
# "4. The total..." at the start of a line numbers a list item; a model cut off right after it
# would otherwise "answer" 4. A line that is only "72." is still an answer.
LIST_ENUMERATOR_RE = re.compile(r"^[ \t]*(\d+)[.)][ \t]+\S", re.MULTILINE)
ANSWER_MARKER_RE = re.compile(r"####|\\boxed\{|\banswer\s*(?:is|:)|\bAnswer\s*:", re.IGNORECASE)
YES_NO_RE = re.compile(r"\b(yes|no|true|false)\b", re.IGNORECASE)
_TRUE_WORDS = {"yes", "true"}
_FALSE_WORDS = {"no", "false"}


def parse_number(text: str) -> Fraction | None:
    """The exact value of a number written as text, or None if it is not one number.

    Numbers beyond MAX_DIGITS digits (either side of the point, exponent included) are not numbers
    here either: "1e999999999" would take minutes to expand and 5,000 digits cannot even be printed.
    """
    numerator, slash, denominator = _clean(text).partition("/")
    value = _decimal(numerator)
    if slash and value is not None:
        divisor = _decimal(denominator)
        value = value / divisor if divisor else None  # None for "3/x" and "3/0" alike
    return value


def _clean(text: str) -> str:
    cleaned = text.strip().replace("−", "-").replace("$", "").replace(",", "").replace(" ", "")
    return cleaned.removesuffix("%").removesuffix(".")


def _decimal(text: str) -> Fraction | None:
    """The value of "-12.5" or "1.5e3", or None when it is not such a number or is out of range."""
    match = _DECIMAL_RE.fullmatch(text) if len(text) <= MAX_NUMBER_CHARS else None
    if match is None:
        return None
    whole, decimals, exponent = match.group("whole"), match.group("decimals") or "", int(match.group("exp") or 0)
    # Digits left of the point (after the exponent moves it) bound the size; right of it, the precision.
    if len(whole.lstrip("0")) + exponent > MAX_DIGITS or len(decimals.rstrip("0")) - exponent > MAX_DIGITS:
        return None
    return Fraction(text)


def format_number(value: Fraction | int | float) -> str:
    """The canonical text of a number: "72", "0.5", "-3.25", "0.333333"."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    scaled = round(value * 10**DECIMALS)  # exact integer arithmetic: no float rounding surprises
    whole, decimals = divmod(abs(scaled), 10**DECIMALS)
    text = f"{whole}.{decimals:0{DECIMALS}d}".rstrip("0").rstrip(".")
    return f"-{text}" if scaled < 0 else text


def normalize_number(text: str) -> str | None:
    """Canonical text of a number written any common way, or None if `text` is not a number."""
    value = parse_number(text)
    return None if value is None else format_number(value)


def normalize_yes_no(value: object) -> str | None:
    """ "yes" or "no" for a boolean written any common way, else None."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        word = value.strip().strip(".!").lower()
        if word in _TRUE_WORDS:
            return "yes"
        if word in _FALSE_WORDS:
            return "no"
    return None


def normalize_answer(value: object) -> str:
    """The canonical form of a gold answer: a number, "yes"/"no", or else the stripped text.

    Text never fails (a model's answer is text); a JSON number that cannot be compared (NaN,
    infinite, over MAX_DIGITS digits) raises ValueError with the reason.
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return format_number(_comparable(value))
    if not isinstance(value, str):
        raise TypeError(f"an answer must be a string, number or boolean, not {type(value).__name__}")
    return normalize_number(value) or normalize_yes_no(value) or value.strip()


def normalize_gold(value: object) -> str:
    """`normalize_answer` for a gold answer read from a user's file, which must be comparable: a
    number written as text beyond MAX_DIGITS digits ("1e400", 5,000 nines) is a ValueError too,
    instead of silently becoming a text answer that no prediction can match."""
    if isinstance(value, str) and parse_number(value) is None and _is_number_text(_clean(value)):
        raise ValueError(f"number out of range (over {MAX_DIGITS} digits): {value.strip()[:40]}")
    return normalize_answer(value)


def _comparable(value: int | float) -> Fraction:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"not a finite number: {value}")
    if abs(value) >= 10**MAX_DIGITS:
        raise ValueError(f"number out of range (over {MAX_DIGITS} digits)")
    return Fraction(value).limit_denominator(10**9) if isinstance(value, float) else Fraction(value)


def _is_number_text(cleaned: str) -> bool:
    """Whether text has the shape of a number or a fraction, whatever its length."""
    return all(_DECIMAL_RE.fullmatch(part) for part in cleaned.split("/", 1))


def _after_last_marker(text: str) -> str | None:
    markers = list(ANSWER_MARKER_RE.finditer(text))
    return text[markers[-1].end() :] if markers else None


def extract_number_strict(text: str) -> str | None:
    """The first number after the last answer marker ("####", "The answer is", ...), or None."""
    tail = _after_last_marker(text)
    match = NUMBER_RE.search(tail) if tail is not None else None
    return normalize_number(match.group()) if match else None


def extract_number_flexible(text: str) -> str | None:
    """The last number anywhere in the text, or None; list numbering ("4. The") does not count."""
    enumerators = {m.start(1) for m in LIST_ENUMERATOR_RE.finditer(text)}
    matches = [m.group() for m in NUMBER_RE.finditer(text) if m.start() not in enumerators]
    return normalize_number(matches[-1]) if matches else None


def extract_number(text: str) -> str | None:
    """The predicted number in model output: strict rule first, then flexible; None if no number."""
    return extract_number_strict(text) or extract_number_flexible(text)


def extract_yes_no_strict(text: str) -> str | None:
    """The first yes/no/true/false after the last answer marker, or None."""
    tail = _after_last_marker(text)
    match = YES_NO_RE.search(tail) if tail is not None else None
    return normalize_yes_no(match.group()) if match else None


def extract_yes_no_flexible(text: str) -> str | None:
    """The last yes/no/true/false word anywhere in the text, or None."""
    matches = YES_NO_RE.findall(text)
    return normalize_yes_no(matches[-1]) if matches else None


def extract_yes_no(text: str) -> str | None:
    """The predicted yes/no in model output: strict rule first, then flexible; None if absent."""
    return extract_yes_no_strict(text) or extract_yes_no_flexible(text)


def answers_match(predicted: str | None, gold: str) -> bool:
    """Whether a predicted answer equals the gold one under the rule in this module's docstring."""
    if predicted is None:
        return False
    p, g = parse_number(predicted), parse_number(gold)
    if p is not None and g is not None:
        return abs(p - g) <= ABS_TOLERANCE + REL_TOLERANCE * abs(g)
    return normalize_answer(predicted).casefold() == normalize_answer(gold).casefold()
