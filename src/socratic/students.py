"""Open trained students for `solve`: check each folder's role, then load it into the chosen engine.

`solve` asks for engines, not folders: one student (one-pass modes), a QG + QA pair (iterative), or a
pair of LoRA adapters sharing one base model (`--adapters`). The llama.cpp engine reads GGUF, so a
student is exported once next to its safetensors and re-exported only when the weights are newer.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from socratic.engines import Engine
from socratic.errors import SocraticError

if TYPE_CHECKING:
    from socratic.solve import SolveConfig

log = logging.getLogger(__name__)


def check_roles(config: SolveConfig) -> None:
    """Each student folder exists and was trained for the role it is given."""
    from socratic.train import read_checkpoint_config

    if config.mode == "iterative":
        roles = {"qa": config.qa} if config.oracle else {"qg": config.qg, "qa": config.qa}
    else:
        roles = {config.mode: config.model}
    for role, folder in roles.items():
        if folder is None:
            flag = "--model" if config.mode != "iterative" else f"--{role}"
            raise SocraticError(f"--mode {config.mode} needs {flag} (a folder written by `socratic train`)")
        trained = read_checkpoint_config(folder)["mode"]
        if trained != role:
            raise SocraticError(
                f"{folder} is a '{trained}' student; --mode {config.mode} needs a '{role}' student here"
            )


def open_engines(config: SolveConfig) -> tuple[Engine | None, Engine]:
    """(QG, QA) for the iterative mode (QG is None with --oracle), else (None, the one student)."""
    if config.mode != "iterative":
        return None, open_engine(config.model, config)  # type: ignore[arg-type]
    if config.adapters:
        return open_adapter_roles(config)
    qa = open_engine(config.qa, config)  # type: ignore[arg-type]
    return (None if config.oracle else open_engine(config.qg, config)), qa  # type: ignore[arg-type]


def open_adapter_roles(config: SolveConfig) -> tuple[Engine, Engine]:
    """QG and QA as two LoRA adapters of one base model in one `HFEngine`."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from socratic import models
    from socratic.engines import AdapterRole, HFEngine
    from socratic.train import read_checkpoint_config

    if config.engine != "hf" or config.oracle:
        raise SocraticError(
            "--adapters switches LoRA adapters in the hf engine: use it with --engine hf, without --oracle"
        )
    folders = {"qg": Path(config.qg), "qa": Path(config.qa)}  # type: ignore[arg-type]
    bases = {read_checkpoint_config(f)["base_model"] for f in folders.values()}
    missing = [str(f) for f in folders.values() if not (f / "adapter").is_dir()]
    if missing or len(bases) != 1:
        raise SocraticError(
            "--adapters needs QG and QA trained with --lora-r from the same base model "
            f"({'no adapter/ in ' + missing[0] if missing else 'bases differ: ' + ', '.join(sorted(bases))})"
        )
    base = AutoModelForCausalLM.from_pretrained(models.resolve(bases.pop()), dtype=getattr(torch, config.dtype))
    model = PeftModel.from_pretrained(base, folders["qg"] / "adapter", adapter_name="qg")
    model.load_adapter(folders["qa"] / "adapter", adapter_name="qa")
    engine = HFEngine(model, batch_size=config.batch_size, threads=config.threads, tokenizer=folders["qa"])
    return AdapterRole(engine, "qg"), AdapterRole(engine, "qa")


def open_engine(folder: str, config: SolveConfig) -> Engine:
    from socratic.engines import HFEngine, LlamaCppEngine, VLLMEngine

    if config.engine == "hf":
        return HFEngine(folder, batch_size=config.batch_size, dtype=config.dtype, threads=config.threads)
    if config.engine == "vllm":
        try:
            return VLLMEngine(folder, batch_size=config.batch_size)
        except RuntimeError as e:
            raise SocraticError(str(e)) from None
    # Room for the longest prompt: the iterative history grows by up to two lines a step.
    history = 2 * config.max_steps * config.step_tokens if config.mode == "iterative" else config.max_new_tokens
    return LlamaCppEngine(
        student_gguf(folder, config.gguf_type),
        tokenizer=folder,
        threads=config.threads,
        batch_size=config.batch_size,
        context_per_sequence=768 + history,
        lookup=config.lookup,
    )


def student_gguf(folder: str | Path, weights_type: str = "f32") -> Path:
    """The student's GGUF, exported once next to its weights (llama.cpp engine)."""
    from socratic import models
    from socratic.gguf_io import export_gguf
    from socratic.train import read_checkpoint_config

    folder = Path(folder)
    target = folder / f"model.{weights_type}.gguf"
    weights = folder / "model.safetensors"
    if target.exists() and target.stat().st_mtime >= weights.stat().st_mtime:
        return target
    base = read_checkpoint_config(folder)["base_model"]
    if base not in models.MODELS:
        raise SocraticError(
            f"{folder}: the llama.cpp engine needs a base model from `socratic models list` "
            f"(its GGUF is the export template), not {base}; use --engine hf"
        )
    log.warning("exporting %s to GGUF for llama.cpp (once)", folder)
    return export_gguf(folder, models.resolve(base, want="gguf"), target, weights_type)
