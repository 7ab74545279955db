"""The student: which folders (`StudentOptions`, the `--model` / `--qg` / `--qa` of every command that
takes one), finding its method from them (`find_student`), checking each folder's role, then loading
it into the chosen engine.

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
from socratic.text import formats
from socratic.text.methods import Method, get_method, role_folder
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
        default="f16",
        metadata={
            "help": "weights of the GGUF exported for the llamacpp engine: f16 (half the size of f32; on a 2-core "
            "AVX2 CPU it solved 1.25-1.29x faster, with the same accuracy and 97-99 percent of the outputs "
            "equal to f32's, docs/RESULTS.md), f32 (outputs closest to transformers), bf16 or q8_0 (smaller, "
            "outputs differ more; faster only on some CPUs)",
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
    threads: int | None = field(default=None, metadata={"help": "CPU threads (default: its usable cores)", "min": 1})
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


@dataclass(frozen=True)
class StudentOptions:
    """Which student: the option group of `solve`, `ask`, `serve` and `export` (one `--model`, or an
    iterative pair's `--qg` and `--qa`)."""

    model: str | None = field(
        default=None,
        metadata={
            "help": "student folder from `socratic train` (answer, cot or unified), or the folder holding an "
            "iterative pair's qg/ and qa/"
        },
    )
    qg: str | None = field(default=None, metadata={"help": "question-generator folder (iterative pair, with --qa)"})
    qa: str | None = field(
        default=None,
        metadata={"help": "question-answerer folder (iterative pair, with --qg; alone for `solve --oracle`)"},
    )

    def student(self) -> Student:
        """The student, its method found from its folders (`ask`, `serve`, `export`)."""
        return find_student(self.model, self.qg, self.qa)

    def folders(self, method: Method) -> dict[str, str | None]:
        """The folder of each of `method`'s roles (`solve`, which is told the method): `--model` for a
        one-pass method; for the pair, `--qg` and `--qa`, or the qg/ and qa/ of the folder `--model`."""
        if not method.iterative:
            return {method.name: self.model}
        if self.model is not None and self.qg is None and self.qa is None:
            return {role: str(role_folder(self.model, method.name, role)) for role in method.roles}
        return {"qg": self.qg, "qa": self.qa}


@dataclass(frozen=True)
class Student:
    """A student ready to open: its method and the folder of each role; `name` is what serve calls it."""

    method: Method
    folders: dict[str, str]
    name: str

    @property
    def iterative(self) -> bool:
        return self.method.iterative


def find_student(model: str | None, qg: str | None = None, qa: str | None = None) -> Student:
    """The student of a folder written by `socratic train`: a one-pass student (answer, cot, unified),
    or the folder holding an iterative pair (`qg/` and `qa/`, as `train --method iterative` writes),
    or a pair given as `qg` and `qa` folders."""
    if model is None and (qg is None or qa is None):
        raise SocraticError("give --model (a student folder, or the folder holding qg/ and qa/) or both --qg and --qa")
    if model is not None and (qg is not None or qa is not None):
        raise SocraticError("give either --model or --qg and --qa, not both")
    if model is not None and not student_folder.info_path(model).exists():
        pair = Path(model) / "qg", Path(model) / "qa"
        if all(student_folder.info_path(folder).exists() for folder in pair):
            qg, qa = (str(folder) for folder in pair)
        else:
            student_folder.read_info(model)  # the error that names what is missing
    if qg is not None and qa is not None:
        method = get_method("iterative")
        folders = check_roles(method, {"qg": qg, "qa": qa})
        return Student(method, folders, Path(model or Path(qa).parent).resolve().name)
    role = student_folder.read_info(model).role  # type: ignore[arg-type]
    if role not in formats.ONE_PASS_ROLES:
        raise SocraticError(
            f"{model} is a '{role}' student, one half of an iterative pair: give the folder holding qg/ and qa/, "
            "or --qg and --qa"
        )
    method = get_method(role)
    folders = check_roles(method, {role: model})
    return Student(method, folders, Path(model).resolve().name)  # type: ignore[arg-type]


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
    decode = decoding.decode
    written = 2 * decode.max_steps * decode.step_tokens if method.iterative else decode.max_new_tokens
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
