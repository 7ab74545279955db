"""Everything about a student folder, in one place: what `train` writes and `solve` reads.

    runs/gsm8k/unified/
      socratic.json            who the student is (`StudentInfo`): role, text format, base model, data hash
      model.safetensors, config.json, tokenizer files      the weights, loadable by transformers
      adapter/                 the LoRA adapter, when trained with --lora-r (already merged into the weights)
      checkpoints/checkpoint-N resumable trainer states, while training
      model.<type>.gguf        the export llama.cpp decodes, made once on first use
      predictions.<dataset>.<split>.jsonl   what `socratic solve` writes by default (a pair's: in the folder above)

Folders written before `role` was the key of socratic.json say `mode`; they are still read.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from socratic.core.errors import SocraticError
from socratic.core.jsonl import read_state, write_atomic
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
    loss: dict[str, float] = field(default_factory=dict)  # loss options off their defaults (train's _loss_options)


def info_path(folder: str | Path) -> Path:
    return Path(folder) / INFO_FILE


def read_info(folder: str | Path) -> StudentInfo:
    """A student's `socratic.json`, checked: it exists, is readable, and matches this text format."""
    path = info_path(folder)
    if not path.is_file():
        raise SocraticError(f"{folder} has no {INFO_FILE}: was it written by `socratic train`?")
    found = read_state(path, "retrain the student, or copy its folder again")
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
    """A student folder that `solve` can load: its info file, its model config and whole weights
    (checked from the safetensors header, without loading them: a truncated copy would otherwise
    end in the loader's traceback)."""
    if not has_weights(folder):
        raise SocraticError(
            f"{folder} has no {WEIGHTS}: its training did not finish (rerun `socratic train` with the same "
            "options to resume it)"
        )
    if not (Path(folder) / "config.json").is_file():
        raise SocraticError(f"{folder} has no config.json beside its weights: copy the whole student folder again")
    problem = safetensors_problem(Path(folder) / WEIGHTS)
    if problem is not None:
        raise SocraticError(f"{Path(folder) / WEIGHTS} is damaged ({problem}): copy it again, or retrain the student")


def safetensors_problem(path: Path) -> str | None:
    """Why a .safetensors file cannot be whole (None if it can): its header (an 8-byte length, then
    JSON naming each tensor's byte range) must parse and the ranges must end where the file ends."""
    from socratic.core.jsonl import BadJson, parse_json

    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return f"{size} bytes, shorter than a header"
        length = int.from_bytes(head, "little")
        if length > min(size - 8, 100 * 2**20):
            return "its header runs past the end of the file"
        try:
            header = parse_json(f.read(length).decode("utf-8"))
        except (UnicodeDecodeError, BadJson):
            return "its header is not JSON"
    tensors = [t for name, t in header.items() if name != "__metadata__"] if isinstance(header, dict) else None
    ranges = [t.get("data_offsets") if isinstance(t, dict) else None for t in tensors or []]
    if tensors is None or not all(isinstance(r, list) and len(r) == 2 and all(_whole(n) for n in r) for r in ranges):
        return "its header is not a table of tensors"
    expected = 8 + length + max((end for _, end in ranges), default=0)
    if expected > size:
        return f"{size:,} bytes where its header says {expected:,}: cut short"
    if expected < size:
        return f"{size:,} bytes where its header says {expected:,}"
    return None


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


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


def predictions_file(folder: str | Path, dataset: str, split: str, oracle: bool = False) -> Path:
    """Where `socratic solve` writes a student's answers to `dataset`'s `split` by default (with
    --oracle, a file of its own: those answers had the human subquestions)."""
    return Path(folder) / f"predictions.{dataset}.{split}{'.oracle' if oracle else ''}.jsonl"


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
