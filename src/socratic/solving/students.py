"""Open trained students for `solve`: check each folder's role, then load it into the chosen engine.

`solve` asks for engines, not folders: one student (one-pass methods), a QG + QA pair (iterative),
or a pair of LoRA adapters sharing one base model (`--adapters`). The llama.cpp engine reads GGUF,
so a student is exported once next to its safetensors (`student_folder.student_gguf`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from socratic.core.errors import SocraticError
from socratic.engines import ENGINES, Engine
from socratic.solving.loops import DecodeSettings
from socratic.text.methods import Method
from socratic.weights import student_folder
from socratic.weights.gguf_io import GGUF_TYPES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineOptions:
    """How students are run: which engine, how many sequences at once, which weights."""

    engine: str = field(
        default="hf",
        metadata={
            "help": "hf: batched transformers decoding (any model); llamacpp: the student exported "
            "to GGUF (once) and decoded by llama.cpp with continuous batching (fastest on CPUs); vllm: "
            "vLLM on a GPU (extra socratic[vllm]; not tested here)",
            "choices": ENGINES,
        },
    )
    batch_size: int = field(default=32, metadata={"help": "sequences decoded together", "min": 1})
    dtype: str = field(
        default="float32",
        metadata={
            "help": "weights of the hf engine: float32 (reference outputs) or bfloat16 (faster on GPUs and on "
            "CPUs with AMX; greedy outputs differ at near-ties)",
            "choices": ("float32", "bfloat16"),
        },
    )
    gguf_type: str = field(
        default="f32",
        metadata={
            "help": "weights of the GGUF exported for the llamacpp engine: f32 (outputs closest to transformers), "
            "bf16 or q8_0 (smaller and faster, outputs differ slightly)",
            "choices": GGUF_TYPES,
        },
    )
    lookup: int = field(
        default=10,
        metadata={
            "help": "llamacpp engine, greedy decoding: once few sequences are left, check up to N tokens copied "
            "from the prompt or earlier output (prompt lookup) in one llama.cpp call; the same text in fewer "
            "calls; 0 = off",
            "min": 0,
        },
    )
    threads: int | None = field(default=None, metadata={"help": "CPU threads (default: all cores)", "min": 1})
    context: int | None = field(
        default=None,
        metadata={
            "help": "llamacpp engine: tokens each problem may hold, prompt and writing together (default: room "
            "for the most it can write: 768 + max-new-tokens, or 768 + 2 x max-steps x step-tokens for "
            "iterative). A problem that outgrows it ends 'too long', its last solution its answer. Each "
            "student's KV cache grows to batch-size x what the longest problem so far needs, at most "
            "batch-size x this (iterative GSM8K at the defaults: ~4.2 GB a student)",
            "min": 256,
        },
    )


def check_roles(method: Method, folders: dict[str, str | None]) -> dict[str, str]:
    """Each student folder is given, was trained for the role it is given, and has its weights."""
    for role, folder in folders.items():
        if folder is None:
            flag = "--model" if not method.iterative else f"--{role}"
            raise SocraticError(f"--method {method.name} needs {flag} (a folder written by `socratic train`)")
        trained = student_folder.read_info(folder).role
        if trained != role:
            raise SocraticError(
                f"{folder} is a '{trained}' student; --method {method.name} needs a '{role}' student here"
            )
        student_folder.require_weights(folder)
    return folders  # type: ignore[return-value]


def open_engines(
    method: Method, folders: dict[str, str], options: EngineOptions, decoding: DecodeSettings, adapters: bool = False
) -> tuple[Engine | None, Engine]:
    """(QG, QA) for the iterative method (QG is None with --oracle), else (None, the one student)."""
    if options.context is not None and options.engine != "llamacpp":
        raise SocraticError(f"--context sizes the llamacpp engine's KV cache; the {options.engine} engine has none")
    context = options.context or _context_per_sequence(method, decoding)
    if not method.iterative:
        return None, open_engine(folders[method.name], options, context)
    if adapters:
        return open_adapter_roles(folders, options)
    qa = open_engine(folders["qa"], options, context)
    return (open_engine(folders["qg"], options, context) if "qg" in folders else None), qa


def _context_per_sequence(method: Method, decoding: DecodeSettings) -> int:
    """Room for the prompt and what is written: the iterative history grows by up to two lines a step.

    llama.cpp rounds it up to a multiple of 256; a problem whose prompt and budget do not fit is saved
    with finish "too long" and the run goes on (`engines.base.fits`). This is the most a problem may
    take, not what is allocated: the KV cache grows to what the problems need (`LlamaBatch`)."""
    written = 2 * decoding.max_steps * decoding.step_tokens if method.iterative else decoding.max_new_tokens
    return 768 + written


def open_adapter_roles(folders: dict[str, str], options: EngineOptions) -> tuple[Engine, Engine]:
    """QG and QA as two LoRA adapters of one base model in one `HFEngine`."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from socratic.engines import AdapterRole, HFEngine
    from socratic.weights import models

    if options.engine != "hf" or "qg" not in folders:
        raise SocraticError(
            "--adapters switches LoRA adapters in the hf engine: use it with --engine hf, without --oracle"
        )
    paths = {role: Path(folder) for role, folder in folders.items()}
    bases = {student_folder.read_info(f).base_model for f in paths.values()}
    missing = [str(f) for f in paths.values() if not (f / "adapter").is_dir()]
    if missing or len(bases) != 1:
        raise SocraticError(
            "--adapters needs QG and QA trained with --lora-r from the same base model "
            f"({'no adapter/ in ' + missing[0] if missing else 'bases differ: ' + ', '.join(sorted(bases))})"
        )
    base = AutoModelForCausalLM.from_pretrained(models.resolve(bases.pop()), dtype=getattr(torch, options.dtype))
    model = PeftModel.from_pretrained(base, paths["qg"] / "adapter", adapter_name="qg")
    model.load_adapter(paths["qa"] / "adapter", adapter_name="qa")
    engine = HFEngine(model, batch_size=options.batch_size, threads=options.threads, tokenizer=paths["qa"])
    return AdapterRole(engine, "qg"), AdapterRole(engine, "qa")


def open_engine(folder: str, options: EngineOptions, context_per_sequence: int = 1024) -> Engine:
    from socratic.engines import HFEngine, LlamaCppEngine, VLLMEngine

    if options.engine == "hf":
        return HFEngine(folder, batch_size=options.batch_size, dtype=options.dtype, threads=options.threads)
    if options.engine == "vllm":
        try:
            return VLLMEngine(folder, batch_size=options.batch_size)
        except RuntimeError as e:
            raise SocraticError(str(e)) from None
    return LlamaCppEngine(
        student_folder.student_gguf(folder, options.gguf_type),
        tokenizer=folder,
        threads=options.threads,
        batch_size=options.batch_size,
        context_per_sequence=context_per_sequence,
        lookup=options.lookup,
    )
