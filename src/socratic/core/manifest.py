"""`<output>.manifest.json`: what produced an output file — config, versions, git commit, timings.

cat runs/gsm8k/chains.manifest.json
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from socratic.core.jsonl import write_atomic
from socratic.core.version import __version__

_PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "openai", "llama_cpp_python", "datasets")


def manifest_path(output: Path) -> Path:
    """`<folder>/manifest.json` for a folder, `<name>.manifest.json` beside a file."""
    return output / "manifest.json" if output.is_dir() else output.with_name(output.stem + ".manifest.json")


def git_commit() -> str | None:
    """The commit of the socratic checkout this code runs from, if it runs from one."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None


def versions() -> dict[str, str]:
    found = {"socratic": __version__, "python": sys.version.split()[0]}
    for package in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    return found


def write_manifest(output: Path, command: str, config: Any, started: float, commit: str | None, **facts: Any) -> Path:
    """Write the manifest beside `output`. `started` is the `time.time()` the command began and `commit`
    the `git_commit()` read then: a long run must not report a commit made while it ran."""
    path = manifest_path(output)
    payload = {
        "command": command,
        "output": str(output),
        "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config,
        "versions": versions(),
        "git_commit": commit,
        "machine": {"platform": platform.platform(), "processor": platform.machine()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
        **facts,
    }
    # Atomic, like the outputs it describes: a full disk leaves the old manifest, not half a new one.
    return write_atomic(path, [json.dumps(payload, indent=2, default=str) + "\n"])
