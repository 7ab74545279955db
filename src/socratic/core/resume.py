"""Resuming only what the same settings made: a stage that continues from saved state (a reply cache,
trainer checkpoints, a predictions file, a run folder) first checks who made it.

    socratic train --method unified --out runs/s ...   # killed after its first checkpoint
    socratic train --method answer  --out runs/s ...   # -> error: runs/s/checkpoints were made by ...

Each piece of state gets a sidecar `<state>.settings.json` with the settings that shape its content
(not those that only change speed, such as batch sizes or threads, nor --limit, which only says how
far to go). A rerun with other settings is refused with the first difference and how to start
afresh; state older than its sidecar is adopted as it is, and the sidecar written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from socratic.core.errors import SocraticError
from socratic.core.jsonl import read_state, write_atomic


def settings_path(state: Path) -> Path:
    return state.with_name(state.name + ".settings.json")


def recorded_settings(state: Path) -> dict[str, Any] | None:
    """The settings recorded beside `state` (None without a sidecar); a sidecar that is not a settings
    record is an error."""
    sidecar = settings_path(state)
    if not sidecar.is_file():
        return None
    return read_state(sidecar, f"not a settings record; delete {state} and it to start afresh")


def claim(state: Path, settings: dict[str, Any], what: str) -> None:
    """Check that `state`, if it exists, was made with `settings`, then record them beside it.

    `what` names the state in the error, e.g. "predictions".
    """
    sidecar = settings_path(state)
    settings = json.loads(json.dumps(settings))  # tuples as lists, as they are read back
    if state.exists() and (found := recorded_settings(state)) is not None:
        keys = [*settings, *(key for key in found if key not in settings)]  # the most telling first
        differs = [key for key in keys if found.get(key) != settings.get(key)]
        if differs:
            key = differs[0]
            raise SocraticError(
                f"{state} holds {what} made with other settings ({key}: {found.get(key)!r}, now "
                f"{settings.get(key)!r}): delete it (and {sidecar.name}) to start afresh, or choose another --out"
            )
    write_atomic(sidecar, [json.dumps(settings, indent=2, sort_keys=True) + "\n"])
