"""`socratic train`: fine-tune a small causal LM on chains, for one of the paper's methods.

    socratic train --method unified --chains runs/gsm8k/chains.jsonl --model smollm2-135m --out runs/gsm8k/unified
    socratic train --method iterative --chains runs/gsm8k/chains.jsonl --model gemma3-270m --lora-r 16 --out runs/it
    socratic train --config run.toml --method cot --out runs/cot      # the [train] section of a config file
    socratic train --method cot --chains runs/gsm8k/chains.jsonl --model gpt2-large --out runs/cot  # a hub id
    accelerate launch -m socratic train --method unified ...      # several GPUs (DDP, FSDP, DeepSpeed); README
    accelerate launch --cpu --num_processes 2 -m socratic train ... # several CPU processes (DDP over gloo)

Reads `Chain`s (and the `Problem`s they belong to), writes a student folder per role of the method
that `solve` loads (`student_folder.py`): safetensors weights, the tokenizer, `socratic.json` (role, text
format version, base model, a hash of the training data) and the loss curve (`loss.jsonl`, `loss.png`).

The recipe, and why:
- Text comes only from `formats.segments`: per chain, its text in pieces that are trained (the
  completion; for QG the subquestion lines and the end marker, for QA the solution lines) or not
  (the prompt and history). Each chain is tokenized once and the loss is on trained tokens only.
  QG and QA thus see each chain once, not once per step with the history repeated: the same
  examples as `formats.examples`, in a third of the tokens (tested).
- Examples are packed best-fit into rows of `--max-length` tokens with no padding (TRL's `bfd`
  packing); each example keeps its own position ids, from which transformers builds a block-diagonal
  attention mask, so packed examples never see each other (tested for Llama, GPT-2 and Qwen2, and
  checked on each model before training: one whose attention ignores them trains unpacked, warned).
- Full fine-tuning by default, as in the paper; `--lora-r` trains LoRA adapters on every linear
  layer instead (merged into the saved weights). AdamW, linear decay after a short warm-up
  (`--lr-schedule cosine` or `constant` instead).
- bf16 mixed precision where the hardware computes bf16 natively (GPUs; CPUs with AVX512-BF16 or
  AMX, where weights stay float32 and matrix products run in bf16); `accelerate launch` for GPUs.
- On a CPU a step's packed rows go through the model one pass each, their gradients summed
  (`--micro-batch`): the step and its loss are those of one pass over all of them, at 1.17-1.18x the
  tokens/s (docs/RESULTS.md, issue 32); a GPU takes the whole batch in one pass, as before.
- Checkpoints every `--save-steps` under `<out>/checkpoints/`; rerunning the same command resumes
  from the latest one, after checking it was made by the same recipe and data (else it stops).
  One process trains a folder at a time: a second one (the same command twice) stops at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from socratic.core import resume
from socratic.core.errors import SocraticError
from socratic.core.locks import holding_lock
from socratic.core.machine import bound_kernel_cache, release_freed_memory
from socratic.core.manifest import git_commit, write_manifest
from socratic.text.methods import role_folder, roles_to_train
from socratic.training.config import TrainConfig, default_threads
from socratic.training.data import load_pieces, tokenize_pieces
from socratic.training.limits import check_lengths
from socratic.training.packed_attention import training_attention
from socratic.training.trainer import (
    activation_checkpointing,
    attends_per_example,
    checkpointing_args,
    no_checkpoint_at_the_end,
    optimizer_name,
    packing_is_exact,
    progress_bar,
    recomputed_layers,
    release_memory_each_step,
    stop_when_not_finite,
    trainer_class,
    training_bf16,
    write_loss_curve,
)
from socratic.weights import student_folder
from socratic.weights.student_folder import StudentInfo

log = logging.getLogger(__name__)


def run_train(config: TrainConfig) -> Path:
    """Train the student of each role of `config.method`; return the output folder."""
    for role in roles_to_train(config.method):
        train_role(config, role)
        release_freed_memory()  # the next role's training starts from what this process holds
    return Path(config.out)


def train_role(config: TrainConfig, role: str) -> Path:
    """Train the student of one role of `config.method` (QG or QA of the iterative pair, or the one-pass
    student) into its folder; `socratic run` trains each role in a process of its own."""
    return _train_one(config, role, role_folder(config.out, config.method, role))


def _train_one(config: TrainConfig, role: str, out: Path) -> Path:
    started = time.time()
    commit = git_commit()
    # The inputs and the folder are checked before the training libraries are even imported.
    pieces, data_hash = load_pieces(config, role)
    check_lengths(config)  # max_length against the model's positions and the machine, before it loads
    with _training_lock(out):
        if _already_trained(out, config, role, data_hash):
            print(f"{out}: already a finished {role} student of these chains: kept (delete it to retrain)")
            return out
        resume.claim(student_folder.checkpoints_folder(out), _recipe(config, role, data_hash), "checkpoints")
        return _fit(config, role, out, pieces, data_hash, started, commit)


def _training_lock(out: Path) -> contextlib.AbstractContextManager[None]:
    """One training run per student folder: a second one (the same command in another terminal, or a
    pipeline reaching a student someone trains by hand) stops at once instead of both writing
    checkpoints. Under `accelerate launch` the main process holds it for all of them."""
    if os.environ.get("RANK", "0") != "0":
        return contextlib.nullcontext()
    busy = f"{out} is being trained by another process: wait for it to end (it can resume) or use another --out"
    return holding_lock(student_folder.training_lock(out), busy)


def _fit(
    config: TrainConfig,
    role: str,
    out: Path,
    pieces: list[list[tuple[str, bool]]],
    data_hash: str,
    started: float,
    commit: str | None,
) -> Path:
    resume_from = student_folder.latest_checkpoint(out)
    bound_kernel_cache()  # before the first matrix product: oneDNN reads it then

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from socratic.weights import models

    torch.set_num_threads(config.threads or default_threads())
    base = models.resolve(config.model)
    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    gpu = torch.cuda.is_available()
    bf16 = training_bf16(config.bf16, gpu)
    model = AutoModelForCausalLM.from_pretrained(
        base, dtype=torch.bfloat16 if gpu and bf16 else torch.float32, attn_implementation="sdpa"
    )
    packing = config.packing and packing_is_exact(model, config.model)
    per_example = packing and config.packed_attention and attends_per_example(model, config.model)
    dataset = Dataset.from_list([tokenize_pieces(tokenizer, p) for p in pieces])
    per_pass = config.rows_per_pass(gpu)
    args = SFTConfig(
        output_dir=str(student_folder.checkpoints_folder(out)),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.lr,
        per_device_train_batch_size=per_pass,  # an optimizer step sums the batch's rows, however many a pass
        optim=optimizer_name(config.fused_optimizer),
        gradient_accumulation_steps=config.grad_accum * config.batch_size // per_pass,
        lr_scheduler_type={"constant": "constant_with_warmup"}.get(config.lr_schedule, config.lr_schedule),
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        max_length=config.max_length,
        packing=packing,
        packing_strategy="bfd",
        pad_to_multiple_of=compiled_batch_tokens(config, packing, per_pass),
        completion_only_loss=True,
        bf16=bf16,
        logging_steps=config.logging_steps,
        logging_nan_inf_filter=False,  # a loss that blew up is shown as such (the trainer would hide it)
        save_steps=config.save_steps,
        save_total_limit=2,
        seed=config.seed,
        report_to=config.report_to,
        **checkpointing_args(config.gradient_checkpointing, config.recompute_every),
        torch_compile=config.torch_compile,
        dataloader_num_workers=0,
        shuffle_dataset=True,
        use_cpu=not gpu,
        disable_tqdm=True,  # one bar of our own (`progress_bar`) instead of the trainer's bar and log lines
    )
    trainer = (
        SFTTrainer if uses_trl_loss(config, gpu, role) else trainer_class(SFTTrainer, **_loss_options(config, role))
    )(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=_lora_config(config),
        callbacks=[
            progress_bar(f"train {role}"),
            stop_when_not_finite(),
            release_memory_each_step(),
            *([] if config.final_checkpoint else [no_checkpoint_at_the_end()]),
        ],
    )
    trainer.remove_callback(PrinterCallback)  # with the trainer's bar off, it prints every log as a dict
    if resume_from:
        log.warning("resuming from %s", resume_from)
    with training_attention(model, per_example):
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    _save(trainer, tokenizer, out, config, role, data_hash, len(pieces))
    if not trainer.is_world_process_zero():  # with several processes (`accelerate launch`) one writes the folder
        trainer.accelerator.wait_for_everyone()
        return out
    write_loss_curve(trainer.state.log_history, out, f"{role} · {Path(config.model).name}")
    runtime = next((r["train_runtime"] for r in reversed(trainer.state.log_history) if "train_runtime" in r), None)
    write_manifest(
        out,
        "train",
        config,
        started,
        commit,
        examples=len(pieces),
        data_hash=data_hash,
        steps=trainer.state.global_step,
        processes=trainer.args.world_size,
        packed=packing,
        per_example_attention=per_example,
        activation_checkpointing=activation_checkpointing(trainer.model),
        recomputed_layers=recomputed_layers(trainer.model),
        optimizer=optimizer_name(config.fused_optimizer),
        rows_per_pass=per_pass,
        train_seconds=runtime,
        epoch_tokens=_token_count(trainer),
    )
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    last_loss = f", last loss {losses[-1]:.3f}" if losses else ""
    print(
        f"{out}: {role} student of {config.model}, {len(pieces):,} chains, {trainer.state.global_step} steps in "
        f"{runtime or 0:.0f} s{last_loss}"
    )
    trainer.accelerator.wait_for_everyone()
    return out


def uses_trl_loss(config: TrainConfig, gpu: bool, role: str = "unified") -> bool:
    """TRL's loss where it is the fast one: on a CUDA device with Triton, TRL's fused output layer computes
    log-probabilities chunk by chunk; without Triton (CPUs) it scores every position in float32, and
    socratic's loss over the trained positions took half as long a step (benchmarks/train_mfu.py).
    A role with loss options (decision weight, repeat unlikelihood) needs socratic's."""
    if config.trl_loss is not None:
        return config.trl_loss
    from transformers.utils import is_triton_available

    return gpu and not _loss_options(config, role) and is_triton_available()


def compiled_batch_tokens(config: TrainConfig, packing: bool, rows: int) -> int | None:
    """Under --torch-compile, every pass's flattened rows are padded to the same length (its rows' tokens):
    a compiled graph is specialised to its input's shape, and padding-free batches, whose lengths vary
    step to step, would recompile (or run a slower dynamic-shape graph) instead. The padding is the
    space the best-fit packing left in the rows: a few percent of a step's tokens."""
    return rows * config.max_length if config.torch_compile and packing else None


def _token_count(trainer: Any) -> int:
    """Tokens in one epoch of the (tokenized, packed) training set: no padding is counted."""
    return sum(len(ids) for ids in trainer.train_dataset["input_ids"])


def _lora_config(config: TrainConfig) -> Any:
    if not config.lora_r:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha or 2 * config.lora_r,
        lora_dropout=0.0,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


def _already_trained(out: Path, config: TrainConfig, role: str, data_hash: str) -> bool:
    """Whether `out` is a finished student of this role, base model, data and length of training, so that
    rerunning a pipeline skips it; asking for more steps or epochs continues from its last checkpoint."""
    if not student_folder.info_path(out).is_file():
        return False
    found = student_folder.read_info(out)
    if (found.role, found.base_model, found.data_hash) != (role, config.model, data_hash):
        raise SocraticError(
            f"{out} already holds a different student ({found.role}, {found.base_model}, "
            f"data {found.data_hash}): choose another --out"
        )
    return found.trained_for == _trained_for(config) and student_folder.has_weights(out)


def _recipe(config: TrainConfig, role: str, data_hash: str) -> dict[str, Any]:
    """What makes a checkpoint resumable by this training: same student, data and optimisation. The length
    of training (epochs, max_steps) is not in it: asking for more continues the same run."""
    return {
        "role": role,
        "base_model": config.model,
        "data_hash": data_hash,
        "learning_rate": config.lr,
        "batch_size": config.batch_size,
        "grad_accum": config.grad_accum,
        "max_length": config.max_length,
        "packing": config.packing,
        "lora_r": config.lora_r,
        "lora_alpha": config.lora_alpha,
        "warmup_ratio": config.warmup_ratio,
        **({"lr_schedule": config.lr_schedule} if config.lr_schedule != "linear" else {}),  # older checkpoints resume
        "weight_decay": config.weight_decay,
        **_loss_options(config, role),  # only those off their defaults: older checkpoints resume
        "seed": config.seed,
    }


def _loss_options(config: TrainConfig, role: str) -> dict[str, float]:
    """The loss options of this role's training that are off their defaults (`trainer_class`'s keywords):
    the repeat unlikelihood is QG's alone."""
    options = {"decision_weight": config.decision_weight} if config.decision_weight != 1 else {}
    if config.repeat_unlikelihood and role == "qg":
        options["repeat_unlikelihood"] = config.repeat_unlikelihood
    return options


def _save(
    trainer: Any, tokenizer: Any, out: Path, config: TrainConfig, role: str, data_hash: str, examples: int
) -> None:
    """The student folder. Every process calls this (the weights of a sharded model, FSDP or ZeRO-3, are
    gathered by all of them); the main process alone writes."""
    if config.lora_r:
        trainer.save_model(str(out / "adapter"))
        if trainer.is_world_process_zero():  # `solve` loads one plain folder
            trainer.model.merge_and_unload().save_pretrained(out, safe_serialization=True)
    else:
        trainer.save_model(str(out))
    if not trainer.is_world_process_zero():
        return
    (out / "training_args.bin").unlink(missing_ok=True)  # the trainer's pickle; the manifest says it in JSON
    tokenizer.save_pretrained(out)
    info = StudentInfo(
        role=role,
        base_model=config.model,
        data_hash=data_hash,
        examples=examples,
        lora_r=config.lora_r,
        trained_for=_trained_for(config),
        loss=_loss_options(config, role),
    )
    student_folder.write_info(out, info)


def _trained_for(config: TrainConfig) -> dict[str, float]:
    return {"epochs": config.epochs, "max_steps": config.max_steps}
