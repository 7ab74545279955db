"""Normalise gold answers, extract predicted answers from free text, and compare the two.

    python -c "from socratic.answers import extract_number; print(extract_number('so she pays $1,200.50. #### 1200.5'))"

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

import re
from fractions import Fraction

ABS_TOLERANCE = Fraction(1, 10**6)
REL_TOLERANCE = Fraction(1, 10**4)
DECIMALS = 6  # places kept when a fraction has no exact short decimal form

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
    """The exact value of a number written as text, or None if it is not one number."""
    cleaned = text.strip().replace("−", "-").replace("$", "").replace(",", "").replace(" ", "")
    cleaned = cleaned.removesuffix("%").removesuffix(".")
    if not cleaned:
        return None
    try:
        if "/" in cleaned:
            numerator, denominator = cleaned.split("/", 1)
            value = Fraction(numerator) / Fraction(denominator)
        else:
            value = Fraction(cleaned)
    except (ValueError, ZeroDivisionError):
        return None
    return value


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
    """The canonical form of a gold answer: a number, "yes"/"no", or else the stripped text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return format_number(Fraction(value).limit_denominator(10**9) if isinstance(value, float) else value)
    if not isinstance(value, str):
        raise TypeError(f"an answer must be a string, number or boolean, not {type(value).__name__}")
    return normalize_number(value) or normalize_yes_no(value) or value.strip()


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
