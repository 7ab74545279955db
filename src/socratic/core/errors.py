"""Errors a user can act on.

    socratic data show --dataset gsm8kk     # -> socratic: error: unknown dataset 'gsm8kk' (did you mean 'gsm8k'?)

Anything raised as a `SocraticError` is the user's to fix (a bad file, a bad name, a missing extra);
the CLI prints its one-line message and exits with status 2. So is an `OSError` about a file (a
read-only folder, a full disk, a folder where a file should be): `describe_os_error` says which
file and why in one line. Every other exception is a bug in socratic and keeps its traceback.
"""

from __future__ import annotations

import difflib
import errno
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
    return SocraticError(f"unknown {kind} '{name}'{did_you_mean(name, known)}")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean ...?)' for the closest known name, else the list of known names."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (choose from: {', '.join(known)})"


# OSErrors without a file name that are still the user's to fix: no space, no quota, read-only.
_USER_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def describe_os_error(error: OSError) -> str | None:
    """One line for an OSError the user can fix ("out/p.jsonl: Permission denied"), or None when it
    names no file and is not about space or permissions (then it is a bug, with its traceback)."""
    names = [str(name) for name in (error.filename, error.filename2) if name is not None]
    if not names and error.errno not in _USER_ERRNOS:
        return None
    reason = error.strerror or str(error) or type(error).__name__
    return " ".join(": ".join([*names, reason]).split())  # one line, whatever the names hold


def cannot_write(path: str | Path, error: OSError) -> SocraticError:
    """The error for an output that could not be written: the output's name, then the system's
    reason, with the file it concerns when that is another one (a parent that is a file)."""
    path = Path(path)
    culprit = Path(error.filename) if error.filename is not None else None
    if culprit is not None and culprit != path and culprit.parent == path.parent and culprit.name.startswith(path.name):
        culprit = None  # our own temporary file beside the output: name the output only
    blocker = _file_in_the_way(path) if isinstance(error, FileExistsError | NotADirectoryError) else None
    if blocker is not None:
        reason = f"{blocker} is a file, not a folder"
    elif culprit is not None and culprit != path:
        reason = f"{culprit}: {error.strerror or error}"
    else:
        reason = error.strerror or str(error) or type(error).__name__
    return SocraticError(" ".join(f"cannot write {path}: {reason}".split()))


def _file_in_the_way(path: Path) -> Path | None:
    """The first folder on the way to `path` that is a file instead, if there is one."""
    return next((parent for parent in reversed(path.parents) if parent.exists() and not parent.is_dir()), None)
