"""Everything about a student folder, in one place: what `train` writes and `solve` reads.

    runs/gsm8k/unified/
      socratic.json            who the student is (`StudentInfo`): role, text format, base model, data hash
      model.safetensors, config.json, tokenizer files      the weights, loadable by transformers
      adapter/                 the LoRA adapter, when trained with --lora-r (already merged into the weights)
      checkpoints/checkpoint-N resumable trainer states, while training
      model.<type>.gguf        the export llama.cpp decodes, made once on first use

Folders written before `role` was the key of socratic.json say `mode`; they are still read.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from socratic.core.errors import SocraticError
from socratic.core.jsonl import write_atomic
from socratic.text import formats

log = logging.getLogger(__name__)

INFO_FILE = "socratic.json"
WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class StudentInfo:
    """The contents of `socratic.json`."""

    role: str  # one of methods.ROLES: the text layout the student was trained on
    base_model: str
    format_version: int = formats.FORMAT_VERSION
    data_hash: str | None = None
    examples: int | None = None
    lora_r: int | None = None
    trained_for: dict[str, float] = field(default_factory=dict)  # epochs, max_steps


def info_path(folder: str | Path) -> Path:
    return Path(folder) / INFO_FILE


def read_info(folder: str | Path) -> StudentInfo:
    """A student's `socratic.json`, checked: it exists, is readable, and matches this text format."""
    path = info_path(folder)
    if not path.is_file():
        raise SocraticError(f"{folder} has no {INFO_FILE}: was it written by `socratic train`?")
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SocraticError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(found, dict):
        raise SocraticError(f"{path}: expected a JSON object, found {type(found).__name__}")
    if "role" not in found and "mode" in found:  # written before the key was renamed
        found["role"] = found.pop("mode")
    if found.get("format_version") != formats.FORMAT_VERSION:
        raise SocraticError(
            f"{folder} was trained on text format {found.get('format_version')}, this socratic "
            f"writes format {formats.FORMAT_VERSION}: retrain it"
        )
    missing = [name for name in ("role", "base_model") if not isinstance(found.get(name), str)]
    if missing:
        raise SocraticError(f"{path}: '{missing[0]}' is missing or not a string")
    known = {f.name for f in dataclasses.fields(StudentInfo)}
    return StudentInfo(**{k: v for k, v in found.items() if k in known})


def write_info(folder: str | Path, info: StudentInfo) -> None:
    write_atomic(info_path(folder), [json.dumps(dataclasses.asdict(info), indent=2) + "\n"])


def has_weights(folder: str | Path) -> bool:
    return (Path(folder) / WEIGHTS).is_file()


def require_weights(folder: str | Path) -> None:
    """A student folder that `solve` can load: its info file and its weights."""
    if not has_weights(folder):
        raise SocraticError(
            f"{folder} has no {WEIGHTS}: its training did not finish (rerun `socratic train` with the same "
            "options to resume it)"
        )


def checkpoints_folder(folder: str | Path) -> Path:
    return Path(folder) / "checkpoints"


def training_lock(folder: str | Path) -> Path:
    """The lock file a training run holds while it writes the student folder (`train`, `status`)."""
    return checkpoints_folder(folder).with_suffix(".lock")


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The newest complete trainer checkpoint under `<folder>/checkpoints`, to resume from."""
    found = [p for p in checkpoints_folder(folder).glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    numbered = [p for p in found if p.name.split("-")[-1].isdigit()]
    return max(numbered, key=lambda p: int(p.name.split("-")[-1])) if numbered else None


def student_gguf(folder: str | Path, weights_type: str = "f32") -> Path:
    """The student's GGUF, exported once next to its weights and again only when they are newer."""
    from socratic.weights import models
    from socratic.weights.gguf_io import export_gguf, export_gguf_from_hf

    folder = Path(folder)
    require_weights(folder)
    target = folder / f"model.{weights_type}.gguf"
    if target.exists() and target.stat().st_mtime >= (folder / WEIGHTS).stat().st_mtime:
        return target
    base = read_info(folder).base_model
    log.warning("exporting %s to GGUF for llama.cpp (once)", folder)
    if base in models.MODELS:  # the catalogue's GGUF is the template: its tokenizer and metadata exactly
        return export_gguf(folder, models.resolve(base, want="gguf"), target, weights_type)
    return export_gguf_from_hf(folder, target, weights_type)  # a hub id or a folder: from config.json
