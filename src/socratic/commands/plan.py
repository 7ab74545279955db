"""`socratic run --dry-run`: what a run will do and how long its training takes, then a rehearsal of
that training on a tiny model of the student's architecture, in seconds, before hours on a rented GPU.

    socratic run --config paper-gsm8k --dry-run
    socratic run --config my-run.toml --dry-run

Nothing is written into a run folder. The plan lists each stage: the problems the chains come from,
and per student (each role of each method) its examples, tokens per epoch, packed rows, optimizer
steps (its rows packed as TRL's trainer packs them) and size; then the training time estimated at
the tokens per second measured here with one forward and backward pass of the student's
architecture, in bf16 where train would use it (on this machine's GPU, else its CPU; random weights,
so a config.json and tokenizer suffice), and a remark if other processes took a fifth or more of the
cores meanwhile (the estimates are then of a shared machine). The rehearsal builds a random model
from the base model's config, shrunk (2 layers, width 64, the same vocabulary and tokenizer), and
trains every student of the run for two optimizer steps with the run's own recipe (packing, LoRA,
learning rate, lengths), so a broken recipe fails here, not after the hours.

Chains: with `teacher = "human"` they are the dataset's own, and with `teacher = "shipped"` the
package's (`socratic.teacher.shipped`), as `annotate` will write them, so the counts are exact. With
a model teacher none exist yet: the plan counts the problems only, and the rehearsal trains on
placeholder chains (each problem answered in one step).

`socratic run` itself opens with the same plan, shortened (`announce`): what the run will do and
an estimate of each stage's time here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from socratic.commands.pipeline import PipelineConfig, stage_configs
from socratic.commands.run_folder import RunFolder
from socratic.core.errors import SocraticError
from socratic.core.jsonl import write_jsonl
from socratic.core.machine import others_cpu_share
from socratic.core.records import Chain, Step
from socratic.teacher import shipped
from socratic.teacher.human import human_chain
from socratic.text.methods import METHODS, role_folder
from socratic.training.config import TrainConfig
from socratic.training.data import load_pieces, tokenize_pieces
from socratic.training.train import run_train
from socratic.training.trainer import TrainingDiverged, training_bf16
from socratic.weights import models

REHEARSAL_STEPS = 2
REHEARSAL_PROBLEMS = 64  # enough chains for two steps of a large batch; few enough to tokenize in a second
BUSY_SHARE = 0.2  # of the cores' time taken by others while the speed is measured: said beside it


@dataclass(frozen=True)
class StudentPlan:
    """One student of the run: its training set and length."""

    method: str
    role: str
    examples: int
    tokens: int  # per epoch, each example cut at max_length as the trainer cuts it
    rows: int  # rows of max_length tokens, as the trainer packs them (`packed_rows`)
    steps: int


def dry_run(config: PipelineConfig, threads: int | None = None) -> None:
    """Print the plan of `config`, then rehearse its training; raise SocraticError if the recipe breaks."""
    import torch

    torch.set_num_threads(threads or torch.get_num_threads())
    with tempfile.TemporaryDirectory(prefix="socratic-dry-run-") as scratch:
        folder = RunFolder(Path(scratch))
        stages = stage_configs(config, folder, threads)
        chains, exact = planned_chains(config, folder.chains)
        base = models.resolve(config.train.model)
        print(f"plan of run '{config.run.name}' (nothing is written; --dry-run)")
        print(f"  annotate: {len(chains):,} chains of {config.annotate.data.dataset or 'gsm8k'} ({_teacher(config)})")
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(base)
        methods = config.run.methods
        plans = [plan_student(stages[f"train {m}"], m, role, tokenizer) for m in methods for role in _roles(m)]
        params = parameter_count(base)
        print(f"  train: student {config.train.model}, {_millions(params)} parameters, {_recipe(config.train)}")
        speed = measured_speed(base, config.train)
        tokens_per_second, device = speed.train, speed.device
        for p in plans:
            estimate = "" if not exact else f", ~{_duration(p.tokens * _epochs(config.train, p) / tokens_per_second)}"
            print(
                f"    {p.method:<10} {p.role:<8} {p.examples:>7,} examples {p.tokens:>11,} tokens/epoch "
                f"{p.rows:>7,} rows {p.steps:>7,} steps{estimate}"
            )
        total = round(sum(p.tokens * _epochs(config.train, p) for p in plans))
        print(
            f"    speed measured here: {tokens_per_second:,.0f} tokens/s ({device}, one forward + backward pass of the "
            f"student); all training: {total:,} tokens, ~{_duration(total / tokens_per_second)} at that speed"
            + ("" if exact else " (token counts of placeholder chains: the teacher has not written any)")
            + busy_machine_remark(speed.others_share)
        )
        test = config.solve.data
        print(
            f"  solve: {test.limit or 'all'} problems of {test.dataset or 'gsm8k'} {test.split or 'test'} per method, "
            f"engine {config.solve.runtime.engine}, up to {config.solve.decode.max_new_tokens} new tokens"
        )
        print(f"rehearsal: {REHEARSAL_STEPS} steps per student on a tiny random {_architecture(base)}")
        rehearse(config, stages, base, folder)


@dataclass(frozen=True)
class StageForecast:
    """One stage of a run as `socratic run` announces it: what it does and how long it should take here."""

    name: str  # as run.json names the stage: "annotate", "train cot", "solve cot", "evaluate"
    what: str
    seconds: float | None  # None: not estimated (a teacher's replies)


def forecast(config: PipelineConfig, threads: int | None = None) -> tuple[list[StageForecast], Speed]:
    """Each stage of `config` with its estimated time here, from the plan `--dry-run` prints: training
    its tokens at the measured training speed; solving, per test problem, as many tokens as one of the
    student's training examples (its prompt, read, and its answer, written) at the forward speed.
    Loading the students and converting them for llama.cpp are not counted."""
    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(threads or torch.get_num_threads())
    with tempfile.TemporaryDirectory(prefix="socratic-plan-") as scratch:
        folder = RunFolder(Path(scratch))
        stages = stage_configs(config, folder, threads)
        chains, exact = planned_chains(config, folder.chains)
        base = models.resolve(config.train.model)
        tokenizer = AutoTokenizer.from_pretrained(base)
        speed = measured_speed(base, config.train)
        problems = len(config.solve.data.load("test")[2])
        asked = config.annotate.teacher not in ("human", "shipped")
        found = [StageForecast("annotate", f"{len(chains):,} chains", None if asked else 0.0)]
        for method in config.run.methods:
            plans = [plan_student(stages[f"train {method}"], method, role, tokenizer) for role in _roles(method)]
            tokens = sum(p.tokens * _epochs(config.train, p) for p in plans)
            steps = " + ".join(f"{p.steps:,}" for p in plans)
            what = f"{' + '.join(f'{p.examples:,}' for p in plans)} examples, {steps} steps"
            found.append(StageForecast(f"train {method}", what, tokens / speed.train))
            per_problem = sum(p.tokens / max(1, p.examples) for p in plans)
            found.append(
                StageForecast(f"solve {method}", f"{problems:,} test problems", problems * per_problem / speed.forward)
            )
        found.append(StageForecast("evaluate", "the table, the paired tests, the report page", 0.0))
    if not exact:  # placeholder chains: the teacher's real ones are longer
        found = [
            dataclasses.replace(f, what=f"{f.what} (placeholder chains)") if f.name.startswith("train") else f
            for f in found
        ]
    return found, speed


def announce(config: PipelineConfig, folder: Path, threads: int | None = None) -> dict[str, float]:
    """Print what the run will do and an estimate per stage; return the estimates by stage name."""
    from socratic.scoring.evaluate import METHOD_NAMES

    stages, speed = forecast(config, threads)
    task, split, problems = config.solve.data.load("test")
    methods = ", ".join(METHOD_NAMES[m] for m in config.run.methods)
    print(f"socratic run '{config.run.name}' -> {folder}")
    print(
        f"  trains a {config.train.model} student for each method ({methods}) on {stages[0].what} of "
        f"{config.annotate.data.dataset or 'gsm8k'} ({_teacher(config)}), solves the {len(problems):,} problems of "
        f"{task.name} {split} with each, and compares them"
    )
    width = max(len(s.what) for s in stages)
    for stage in stages:
        print(f"    {stage.name:<18}{stage.what:<{width}}  {_eta(stage.seconds)}")
    total = sum(s.seconds for s in stages if s.seconds is not None)
    print(
        f"  about {_duration(total)} in all here (training {speed.train:,.0f} tokens/s, reading and writing "
        f"{speed.forward:,.0f} tokens/s measured just now; loading and converting the students add a little)"
        + busy_machine_remark(speed.others_share),
        flush=True,
    )
    return {s.name: s.seconds for s in stages if s.seconds is not None}


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "not estimated"
    return "seconds" if seconds < 10 else f"~{_duration(seconds)}"


def planned_chains(config: PipelineConfig, path: Path) -> tuple[list[Chain], bool]:
    """The chains the run will train on, written to `path`, and whether they are the real ones: the
    dataset's own with the human teacher, else a placeholder chain per problem."""
    task, _, problems = config.annotate.data.load("train")
    style = config.annotate.style
    if config.annotate.teacher == "human":
        chains = [c for c in (human_chain(p, style) for p in problems) if isinstance(c, Chain)]
        exact = True
    elif config.annotate.teacher == "shipped":
        chains = [c for outcomes in shipped.judged(problems, task.name, style).values() for _, c in outcomes]
        chains, exact = [c for c in chains if isinstance(c, Chain)], True
    else:
        step = (
            Step("What is the answer?", "The answer is {}.") if style == "socratic" else Step("", "The answer is {}.")
        )
        chains = [
            Chain(
                p.id, style, (dataclasses.replace(step, answer=step.answer.format(p.answer)),), p.answer, True, "plan"
            )
            for p in problems
        ]
        exact = False
    if not chains:
        raise SocraticError("the run's [annotate] section selects no problems with chains to train on")
    write_jsonl(path, chains)
    return chains, exact


def plan_student(train: TrainConfig, method: str, role: str, tokenizer: Any) -> StudentPlan:
    """The training set of one student, read by `train.load_pieces` and counted with the real tokenizer."""
    pieces, _ = load_pieces(train, role)
    lengths = [min(len(tokenize_pieces(tokenizer, p)["input_ids"]), train.max_length) for p in pieces]
    tokens = sum(lengths)
    rows = packed_rows(lengths, train) if train.packing else len(lengths)
    per_epoch = math.ceil(rows / (train.batch_size * train.grad_accum))
    steps = train.max_steps if train.max_steps > 0 else math.ceil(train.epochs * per_epoch)
    return StudentPlan(method, role, len(pieces), tokens, rows, steps)


def packed_rows(lengths: list[int], train: TrainConfig) -> int:
    """The rows TRL's trainer packs examples of these lengths into. It shuffles them with the run's seed,
    then packs them best-fit 1,000 at a time (`SFTTrainer._prepare_dataset`), so the count depends on the
    order: the same two calls on the same lengths give the trainer's count. Tokens / max_length, the
    count before, fell 1-2 % short (docs/RESULTS.md, 2026-12-08)."""
    from datasets import Dataset
    from trl.data_utils import pack_dataset

    examples = Dataset.from_dict({"input_ids": [[0] * n for n in lengths]}).shuffle(seed=train.seed)
    return len(pack_dataset(examples, train.max_length, strategy="bfd"))


def parameter_count(base: Path) -> int:
    """Parameters of the model in `base`, counted on the meta device (no weights loaded)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(base))
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class Speed:
    """Tokens per second of the student's architecture on this machine."""

    train: float  # forward + backward, as training runs
    forward: float  # a forward pass alone: reading prompts and writing answers costs about this
    device: str  # e.g. "CPU, bf16 mixed precision"
    others_share: float | None = None  # of the cores' time, taken by other processes while measuring


def measured_speed(base: Path, train: TrainConfig) -> Speed:
    """Tokens per second of the student's architecture here: the second of two forward + backward
    passes on one row of up to 256 tokens (the first warms up), then a forward pass alone. The weights
    are random (the speed does not depend on them), so only the config is needed, not the weights."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(base), dtype=torch.float32)
    model = model.to_empty(device=device).train()
    if train.gradient_checkpointing:  # each (or every Nth) layer's forward pass again in the backward: as train does
        enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        enable(**({"every_n_layers": train.recompute_every} if train.recompute_every > 1 else {}))
    with torch.no_grad():  # matrices random, norms 1, biases 0: as trained weights scale activations
        for name, weight in model.named_parameters():
            if weight.dim() > 1:
                weight.normal_(0, 0.02)
            else:  # small norm weights would shrink activations into denormals, slow on a CPU
                weight.fill_(1.0 if name.endswith("weight") else 0.0)
    length = min(train.max_length, 256)
    ids = torch.randint(0, min(model.config.vocab_size, 1000), (1, length), device=device)
    bf16 = training_bf16(train.bf16, device == "cuda")  # as train decides
    seconds = 0.0
    with others_cpu_share() as busy:
        for _ in range(2):
            started = time.perf_counter()
            with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
                loss = model(input_ids=ids, labels=ids, use_cache=False).loss
            loss.backward()
            model.zero_grad(set_to_none=True)
            seconds = time.perf_counter() - started
        started = time.perf_counter()
        with torch.no_grad():  # reading and writing, as a proxy for the solves (llama.cpp's speed is not measured)
            model(input_ids=ids)
        forward = time.perf_counter() - started
    where = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    precision = "bf16 mixed precision" if bf16 else "float32"
    return Speed(length / seconds, length / forward, f"{where}, {precision}", busy.others)


def busy_machine_remark(others_share: float | None) -> str:
    """A warning for the speed line when other processes took a fifth or more of the cores it was measured
    on: the estimates are then of a shared machine, longer than it alone would take."""
    if others_share is None or others_share < BUSY_SHARE:
        return ""
    return (
        f"; other processes took {others_share * 100:.0f} % of the cores it ran on meanwhile, "
        "so the estimates are of a shared machine"
    )


def tiny_copy(base: Path, out: Path) -> Path:
    """A random model of `base`'s architecture, shrunk (2 layers, width 64, 4 heads), with its tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(base)
    shrunk = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2}
    shrunk |= {"intermediate_size": 128, "n_inner": 256, "head_dim": 16}
    for key, value in shrunk.items():
        if hasattr(config, key):
            setattr(config, key, value)
    if isinstance(getattr(config, "layer_types", None), list):  # per-layer attention kinds (Gemma 3, Qwen2)
        config.layer_types = config.layer_types[:2]
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out


def rehearse(config: PipelineConfig, stages: dict[str, Any], base: Path, folder: RunFolder) -> None:
    """Two optimizer steps of every student of the run, with its recipe, on a tiny copy of the student.
    `stages` are `stage_configs` of `folder`: the students are written where the run would write them."""
    tiny = tiny_copy(base, folder.root / "tiny")
    for method in config.run.methods:
        train = stages[f"train {method}"]
        data = dataclasses.replace(train.data, limit=REHEARSAL_PROBLEMS)
        short = dataclasses.replace(
            train,
            model=str(tiny),
            data=data,
            max_steps=REHEARSAL_STEPS,
            save_steps=10**6,
            logging_steps=1,
        )
        started = time.perf_counter()
        try:
            run_train(short)
        except TrainingDiverged as e:
            raise SocraticError(f"dry run: the {method} student's loss is not finite: {e}") from None
        for role in _roles(method):
            out = role_folder(short.out, method, role)
            losses = [json.loads(line)["loss"] for line in (out / "loss.jsonl").read_text().splitlines()]
            if not losses or not all(math.isfinite(x) for x in losses):
                raise SocraticError(f"dry run: the {method} {role} student's loss is not finite ({losses})")
            print(f"  {method:<10} {role:<8} ok: loss {' -> '.join(f'{x:.3f}' for x in losses)}")
        print(f"  ({time.perf_counter() - started:.0f} s)")
    print("dry run passed: the recipe trains; run it without --dry-run")


def _roles(method: str) -> tuple[str, ...]:
    return METHODS[method].roles


def _teacher(config: PipelineConfig) -> str:
    teacher = config.annotate.teacher
    if teacher == "human":
        return "the dataset's own"
    if teacher == "shipped":
        written = shipped.provenance(config.annotate.data.dataset or "gsm8k", config.annotate.style)["teacher"]["model"]
        return f"written by {written} (shipped with socratic)"
    return f"to be written by {teacher}; counted: its problems"


def _millions(count: int) -> str:
    """135M for SmolLM2, 0.2M for a test's tiny model (not 0M)."""
    return f"{count / 1e6:,.{1 if count < 10e6 else 0}f}M"


def _recipe(train: TrainConfig) -> str:
    tuning = f"LoRA r={train.lora_r}" if train.lora_r else "full fine-tuning"
    epochs = _counted(train.max_steps, "step") if train.max_steps > 0 else _counted(train.epochs, "epoch")
    rows = _counted(train.batch_size * train.grad_accum, "row")
    return (
        f"{tuning}, {epochs}, lr {train.lr:g}, {rows} of {train.max_length} tokens a step per process"
        f"{'' if train.packing else ' (unpacked)'}"
    )


def _counted(count: float, noun: str) -> str:
    """A count and its noun, singular for one: 1 epoch, 2 epochs, 0.5 epochs."""
    return f"{count:g} {noun}{'' if count == 1 else 's'}"


def _epochs(train: TrainConfig, plan: StudentPlan) -> float:
    """Passes over the training set, as `--epochs` or as `--max-steps` makes them."""
    if train.max_steps <= 0:
        return train.epochs
    per_epoch = max(1, math.ceil(plan.rows / (train.batch_size * train.grad_accum)))
    return train.max_steps / per_epoch


def _architecture(base: Path) -> str:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(base).model_type


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
