"""Files of records: strict JSON, JSON Lines streams, atomic writes and crash-safe appenders.

Files are appended to as work is produced, so a killed process leaves at most one truncated last
line. `read_jsonl` skips that line with a warning (the work it held is redone on resume) and
`JsonlAppender` cuts it off before appending, so a resumed run never glues a new record onto it.
Any other malformed row is an error that names the file, the line and the field: bytes that are
not UTF-8, JSON that is not JSON (NaN, 1e400, 5,000-digit numbers, nesting past the recursion
limit) included. An appender holds an exclusive lock, so a second process writing the same output
fails at once instead of duplicating it (`core.locks.holding_lock` does the same for work that
is not one file, such as a training run); whole files are written atomically and a failed write
leaves no temporary file behind. Files that cannot be written are one-line `SocraticError`s.

The same strictness for whole documents: `parse_json` and `parse_toml` also refuse values nested
deeper than `MAX_DEPTH` (a record nests a few levels; a 500-deep config or a 100k-deep request body
would crash whatever walks it later), and `read_state` reads a state file the program wrote itself
(run.json, a manifest, a trainer state) so that a damaged one is one line naming it and what to do.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from socratic.core.errors import RecordError, SocraticError, cannot_write
from socratic.core.locks import lock_exclusively
from socratic.core.records import Chain, FieldError, Prediction, Problem, Record, Step, from_dict, to_json

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# Python refuses to turn longer digit strings into ints (sys.set_int_max_str_digits); 0 means no limit.
MAX_INT_DIGITS = sys.get_int_max_str_digits() or 4300
# Deepest nesting of a JSON or TOML value read: records and configs nest a few levels.
MAX_DEPTH = 64
# Largest state file or config file read whole (a trainer state with a long log is a few MB).
MAX_DOCUMENT_BYTES = 64 * 2**20


def _line(record: Problem | Chain | Prediction | Step | Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) if isinstance(record, Mapping) else to_json(record)


class BadJson(ValueError):
    """Text that `parse_json` refuses; `line` is the line within the text where that is known."""

    def __init__(self, reason: str, line: int | None = None):
        self.reason, self.line = reason, line
        super().__init__(reason)


def parse_json(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads` that also refuses what JSON does not allow and what Python cannot hold.

    NaN and Infinity (not JSON, though Python writes them), numbers too large for a float (1e400)
    or too long to convert (5,000 digits), strings that are not Unicode text (a lone "\\ud800") and
    nesting deeper than `max_depth` all raise `BadJson` with a one-line reason, like a syntax error,
    instead of surfacing later as a crash.
    """
    with _json_errors():
        value = _DECODER.decode(text)
    _check_strings_and_depth(value, max_depth)
    return value


def parse_toml(text: str, source: str, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """`tomllib.loads`, with the same refusals as `parse_json` (deep nesting, lone surrogates) as one
    `SocraticError` line naming `source`: a 500-deep array made tomllib itself recurse to a crash."""
    import tomllib

    if len(text) > MAX_DOCUMENT_BYTES:
        raise SocraticError(f"{source}: {len(text):,} characters is too long for a config file")
    try:
        values = tomllib.loads(text)
        _check_strings_and_depth(values, max_depth)
    except tomllib.TOMLDecodeError as e:
        raise SocraticError(f"{source}: not valid TOML: {e}") from None
    except RecursionError:
        raise SocraticError(f"{source}: not valid TOML (nested too deeply)") from None
    except BadJson as e:
        raise SocraticError(f"{source}: not valid TOML{e.reason.removeprefix('not valid JSON')}") from None
    return values


def read_state(path: Path, fix: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> dict[str, Any]:
    """A JSON object the program wrote itself (run.json, a manifest, a trainer state), read strictly:
    a file that is truncated, not JSON, too large or not an object is a `SocraticError` naming it and
    saying what to do (`fix`, e.g. "delete it to start the run afresh"), never a traceback."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise BadJson(f"{size:,} bytes, more than such a file ever holds")
        value = parse_json(read_text(path))
    except (BadJson, RecordError) as e:
        reason = e.reason
    else:
        if isinstance(value, dict):
            return value
        reason = f"expected a JSON object, found {type(value).__name__}"
    raise SocraticError(f"{path} is damaged ({reason}): {fix}")


def json_array(path: Path) -> Iterator[tuple[int, Any]]:
    """(item number, item) for each item of a file holding one JSON array, decoded item by item so
    that an error (bad bytes, bad JSON, NaN, deep nesting) is a `RecordError` naming its line."""
    text = read_text(path)
    position = _skip_space(text, 0)
    if not text.startswith("[", position):
        try:
            value = parse_json(text)
        except BadJson as e:
            raise RecordError(path, e.line or 1, e.reason) from None
        raise RecordError(path, 1, f"expected a JSON array of objects, got {type(value).__name__}")
    position, lines = _skip_space(text, position + 1), _LineCounter(text)
    number = 0
    while not text.startswith("]", position):
        if number:  # after an item: a comma, then the next item
            if not text.startswith(",", position):
                raise RecordError(path, lines.at(position), "not valid JSON (expected ',' or ']' after an item)")
            position = _skip_space(text, position + 1)
        number += 1
        line = lines.at(position)
        try:
            with _json_errors():
                value, position = _DECODER.raw_decode(text, position)
            _check_strings_and_depth(value)
        except BadJson as e:
            raise RecordError(path, e.line or line, e.reason) from None
        yield number, value
        position = _skip_space(text, position)
    end = _skip_space(text, position + 1)
    if end < len(text):
        raise RecordError(path, lines.at(end), "not valid JSON (extra data after the array)")


class _LineCounter:
    """Line numbers of positions met in increasing order, in one pass over the text."""

    def __init__(self, text: str):
        self.text, self.position, self.line = text, 0, 1

    def at(self, position: int) -> int:
        self.line += self.text.count("\n", self.position, position)
        self.position = position
        return self.line


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


@contextlib.contextmanager
def _json_errors() -> Iterator[None]:
    """Every way `json` refuses text, as a `BadJson` with a one-line reason."""
    try:
        yield
    except json.JSONDecodeError as e:
        # Some messages end in "at" ("Invalid control character at"): do not say "at at column".
        message = e.msg.removesuffix(" at")
        raise BadJson(f"not valid JSON ({message} at column {e.colno})", e.lineno) from None
    except RecursionError:
        raise BadJson("not valid JSON (nested too deeply)") from None
    except ValueError as e:  # from the three hooks
        raise BadJson(f"not valid JSON ({e})") from None


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _check_strings_and_depth(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """JSON's "\\ud800" escapes can make strings that are not Unicode text (a lone UTF-16 half),
    which no file or terminal can take: printing or writing them later would crash. Values nested
    deeper than `max_depth` are refused too: whatever walks them later (repr, a recursive copy) would
    crash with RecursionError."""
    pending = [(value, 0)]
    while pending:  # a loop, not recursion: the value may be nested as deep as json allows
        item, depth = pending.pop()
        if isinstance(item, dict | list) and depth >= max_depth:
            raise BadJson(f"not valid JSON (nested more than {max_depth} levels deep)")
        if isinstance(item, dict):
            pending.extend((key, depth + 1) for key in item)
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
        elif isinstance(item, str) and (found := _SURROGATE_RE.search(item)):
            raise BadJson(f"not valid JSON (a lone UTF-16 surrogate \\u{ord(found.group()):04x} in a string)")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _short_int(text: str) -> int:
    # int() refuses over sys.get_int_max_str_digits() (4,300) digits with a message about Python.
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise ValueError(f"a number with {digits:,} digits")
    return int(text)


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_short_int)


def json_lines(path: Path, tolerate_truncated_tail: bool = False) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line of a JSONL file; a bad line is a `RecordError`.

    Lines are decoded one by one, so bytes that are not UTF-8 are reported on their own line. With
    `tolerate_truncated_tail`, a last line without its newline that cannot be read is what a killed
    writer leaves behind: it is skipped with a warning. A UTF-8 byte-order mark is ignored.
    """
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                value = parse_json(line) if line.strip() else _BLANK
            except (UnicodeDecodeError, BadJson) as e:
                if tolerate_truncated_tail and not raw.endswith(b"\n"):
                    log.warning("%s:%d: skipping a truncated last line (an interrupted write)", path, number)
                    return
                raise RecordError(path, number, _unreadable(raw, e)) from None
            if value is not _BLANK:
                yield number, value


_BLANK = object()


def _unreadable(raw: bytes, error: UnicodeDecodeError | BadJson) -> str:
    if isinstance(error, BadJson):
        return error.reason
    return f"not UTF-8 text (byte 0x{raw[error.start]:02x} at column {error.start + 1})"


def read_text(path: Path) -> str:
    """A whole UTF-8 text file (a byte-order mark is dropped); bytes that are not UTF-8 are a
    `RecordError` naming their line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line_start = data.rfind(b"\n", 0, e.start) + 1
        line = data.count(b"\n", 0, e.start) + 1
        reason = f"not UTF-8 text (byte 0x{data[e.start]:02x} at column {e.start - line_start + 1})"
        raise RecordError(path, line, reason) from None


def read_jsonl(path: str | Path, kind: type[Record] | None = None) -> Iterator[Any]:
    """Stream the objects of a JSONL file, as records of `kind` if given, else as dicts.

    Blank lines are skipped. A last line without its newline that is not valid JSON is what a
    killed writer leaves behind: it is skipped with a warning. Anything else malformed (bytes that
    are not UTF-8, bad JSON, a line that is not an object, a bad field) raises `RecordError` with
    the file, the line number (1-based) and the field.
    """
    path = Path(path)
    for number, row in json_lines(path, tolerate_truncated_tail=True):
        if kind is None:
            if not isinstance(row, dict):
                raise RecordError(path, number, f"expected a JSON object, got {type(row).__name__}")
            yield row
            continue
        try:
            record = from_dict(kind, row)
        except FieldError as e:
            raise RecordError(path, number, e.reason, field=None if e.field == "<row>" else e.field) from None
        yield record


def write_jsonl(path: str | Path, records: Iterable[Problem | Chain | Prediction | Step | Mapping[str, Any]]) -> Path:
    """Write a whole file atomically: readers see the old file or the new one, never half of it."""
    return write_atomic(path, (_line(record) + "\n" for record in records))


def write_atomic(path: str | Path, chunks: Iterable[str]) -> Path:
    """Write text to a file through a temporary file renamed over it, so readers never see half a file.

    If anything fails (a folder that cannot be written, a full disk, an interrupt) the temporary
    file is removed and the old file, if any, is left as it was; an OSError becomes a one-line
    `SocraticError` naming `path`. The temporary file's name holds the process id, so two
    processes writing the same file never write into one temporary file.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise cannot_write(path, e) from None
        raise
    return path


class JsonlAppender:
    """Append records to a JSONL file, one flushed line each, safe to kill at any moment.

        with JsonlAppender("runs/chains.jsonl") as out:
            out.append(chain)

    Opening takes an exclusive lock on the file for as long as the `with` block lasts: a second
    writer (another `socratic solve` with the same `--out`) fails at once with a `SocraticError`
    instead of interleaving duplicate records. It then cuts off a truncated last line left by an
    earlier killed writer. `fsync=True` also forces each line to disk, for output that costs money
    to reproduce (teacher replies). An OSError (read-only folder, full disk) becomes a one-line
    `SocraticError` naming the file.
    """

    def __init__(self, path: str | Path, fsync: bool = False):
        self.path = Path(path)
        self.fsync = fsync
        self._file = None

    def __enter__(self) -> JsonlAppender:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        except OSError as e:
            raise cannot_write(self.path, e) from None
        try:
            lock_exclusively(self._file, self.path)
            _drop_truncated_tail(self.path)  # only once locked: the tail may be another writer's line
        except BaseException:
            self._close()
            raise
        return self

    def append(self, record: Problem | Chain | Prediction | Step | Mapping[str, Any]) -> None:
        assert self._file is not None, "JsonlAppender.append outside its `with` block"
        try:
            self._file.write(_line(record) + "\n")
            self._file.flush()
            if self.fsync:
                os.fsync(self._file.fileno())
        except OSError as e:
            raise cannot_write(self.path, e) from None

    def __exit__(self, *exc_info: object) -> None:
        self._close()

    def _close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            try:
                file.close()  # closing also releases the lock
            except OSError as e:
                raise cannot_write(self.path, e) from None


def _drop_truncated_tail(path: Path) -> None:
    """Cut a file back to its last newline, if its last line is incomplete."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        # Walk back in blocks to the last newline; files can be large, so never read them whole.
        end = f.seek(0, os.SEEK_END)
        position = end
        while position > 0:
            block_start = max(0, position - 65536)
            f.seek(block_start)
            block = f.read(position - block_start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                cut = block_start + newline + 1
                break
            position = block_start
        else:
            cut = 0
        log.warning("%s: dropping a truncated last line (%d bytes) left by an interrupted write", path, end - cut)
        f.truncate(cut)
