"""Errors a user can act on.

    socratic data show --dataset gsm8kk     # -> socratic: error: unknown dataset 'gsm8kk' (did you mean 'gsm8k'?)

Anything raised as a `SocraticError` is the user's to fix (a bad file, a bad name, a missing extra);
the CLI prints its one-line message and exits with status 2. Every other exception is a bug in
socratic and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class SocraticError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class RecordError(SocraticError):
    """A row of a data file that cannot be read, located by file, line and field."""

    def __init__(self, path: str | Path, line: int, reason: str, field: str | None = None, unit: str = "line"):
        self.path, self.line, self.field, self.reason = str(path), line, field, reason
        # "file:12" for a line, as editors and compilers print it; "file: item 12" for a JSON array.
        where = f"{self.path}:{line}" if unit == "line" else f"{self.path}: {unit} {line}"
        if field is not None:
            where += f": field '{field}'"
        super().__init__(f"{where}: {reason}")


def unknown_name(kind: str, name: str, known: Iterable[str]) -> SocraticError:
    """An error for a name that is not one of `known`, with the closest match as a hint."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else f" (choose from: {', '.join(known)})"
    return SocraticError(f"unknown {kind} '{name}'{hint}")
