"""What every property test of the suite shares (`tests/fuzz/__init__.py` says what the suite is): the two
profiles, `run`, the time bounds, the one-error-line contract of the command line, and the strategies
more than one surface draws from (arithmetic a student may write; JSON values, rows and hostile JSON)."""

from __future__ import annotations

import json
import os
import string
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socratic.cli import main
from tests.bounds import cpu_seconds_under

PROFILES = {
    "fast": settings(derandomize=True, max_examples=150, deadline=None, database=None),
    "slow": settings(derandomize=False, max_examples=3000, deadline=None, database=None),
}
# A file through the whole command line costs more than an expression: fewer of those.
FILE_EXAMPLES = {"fast": 40, "slow": 1000}
# Bounds per case, in this thread's CPU time without garbage collection (`tests/bounds.py` says why). A text
# case takes well under 1 ms and a hang takes minutes.
TEXT_CPU_SECONDS = 0.05
COMMAND_CPU_SECONDS = 2.0


EXITS: Counter[int] = Counter()  # exit statuses of the command-line properties, printed by `run`


def both_profiles(test: Callable) -> Callable:
    return pytest.mark.parametrize("profile", ["fast", pytest.param("slow", marks=pytest.mark.slow)])(test)


def run(
    profile: str, prop: Callable, *strategies: st.SearchStrategy, examples: int | None = None, label: str = ""
) -> int:
    """Run `prop` as a hypothesis property under a profile; returns (and prints) how many cases it tried."""
    tried, slowest = 0, 0.0

    def counted(args: tuple) -> None:
        nonlocal tried, slowest
        tried += 1
        started = time.perf_counter()
        prop(*args)
        slowest = max(slowest, time.perf_counter() - started)

    chosen = PROFILES[profile]
    if examples is not None:
        chosen = settings(chosen, max_examples=examples)
    settings(chosen, suppress_health_check=list(HealthCheck))(given(st.tuples(*strategies))(counted))()
    exits = f", exit status {dict(sorted(EXITS.items()))}" if EXITS else ""
    print(f"\n{prop.__name__}{label} [{profile}]: {tried} cases, slowest {1000 * slowest:.1f} ms{exits}")
    EXITS.clear()
    return tried


# --- strategies more than one surface draws from ----------------------------------------------------

_number = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(str),
    st.integers(min_value=0, max_value=10**30).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=7).map(lambda d: str(abs(d))),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(0, 999), st.integers(-500, 500)),
    st.sampled_from(["1.0000001", "1.001", "0.5", "9", "1e309", "1e-400", "10", "0", "1", "2"]),
)
_operator = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "×", "÷"])


def expressions() -> st.SearchStrategy[str]:
    tree = st.recursive(
        _number,
        lambda inner: st.one_of(
            st.builds(lambda a, op, b: f"{a}{op}{b}", inner, _operator, inner),
            st.builds(lambda a: f"({a})", inner),
            st.builds(lambda a: f"-{a}", inner),
            st.builds(lambda a: f"{a}%", inner),
        ),
        max_leaves=12,
    )
    noise = st.text(alphabet=string.printable + "×÷−$%,", max_size=80)
    return st.one_of(tree, tree.map(lambda t: f"${t}"), noise)


scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**120), max_value=10**120),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)

# Raw JSON text that python's json module writes but JSON does not allow, and other hostile pieces.
hostile_json = st.sampled_from(
    [
        '{"question": "q", "answer": NaN}',
        '{"question": "q", "answer": Infinity}',
        '{"question": "q", "answer": 1e400}',
        '{"question": "q", "answer": ' + "9" * 5000 + "}",
        '{"question": "\\ud800", "answer": 1}',
        "[" * 5000 + "]" * 5000,
        '{"question": "a\tb", "answer": 1}',
        '{"question": "q", "answer": "' + "7" * 5000 + '"}',
    ]
)


def jsonl_text(rows: list) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


# --- the command line's contract ---------------------------------------------------------------------


def one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("socratic: error: ")]
    assert len(errors) == 1, stderr
    assert stderr.rstrip("\n").endswith(errors[0]), stderr  # nothing after it: no traceback
    return errors[0]


def command_contract(capsys, folder: Path, argv: list[str], named: str) -> int:
    """Run the command; exit 0, or exit 2 with one error line naming the file; nothing new written."""
    before = sorted(os.listdir(folder))
    capsys.readouterr()
    with cpu_seconds_under(COMMAND_CPU_SECONDS):
        status = main(argv)
    _, err = capsys.readouterr()
    assert status in (0, 2), (status, err)
    EXITS[status] += 1
    if status == 2:
        assert named in one_error_line(err)
    assert sorted(os.listdir(folder)) == before
    return status
