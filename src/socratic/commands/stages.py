"""The pipeline's stages as Python functions: what `socratic.annotate`, `train`, `solve`, `evaluate` and
`run` are, and what the `socratic` command calls after parsing its flags.

    python -c "import socratic; print(socratic.annotate(socratic.AnnotateConfig(out='runs/chains.jsonl')))"

Each takes its stage's config dataclass (the fields are the command's flags, with the same names and
defaults: `socratic train --help`) and returns what the stage wrote. Values are checked as the
command checks its flags, so a bad one is the same one-line `SocraticError` in Python as on the command
line. Training also writes each student's model card (`scoring.cards`); evaluation refreshes the cards
of the students whose predictions it scored.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any, TypeVar

from socratic.commands.pipeline import RunArgs, load_config, run_command, status_command
from socratic.commands.solve import SolveConfig, run_solve
from socratic.core import config as options
from socratic.core.errors import SocraticError
from socratic.scoring import cards
from socratic.scoring.evaluate import EvaluateConfig, Evaluation, run_evaluate
from socratic.scoring.report import write_report
from socratic.teacher.annotate import AnnotateConfig, run_annotate
from socratic.training.config import TrainConfig
from socratic.training.train import run_train

Config = TypeVar("Config")

TRACKERS = {"tensorboard": ("tensorboard", "pip install 'socratic[track]'"), "wandb": ("wandb", "pip install wandb")}


def annotate(config: AnnotateConfig) -> Path:
    """`socratic annotate`: a teacher (or the datasets' human annotators) writes chains; the chains file."""
    return run_annotate(checked(config))


def train(config: TrainConfig) -> Path:
    """`socratic train`: the student of each role of `config.method`, each with its model card; the folder."""
    config = checked(config)
    if config.report_to in TRACKERS:
        module, install = TRACKERS[config.report_to]
        if importlib.util.find_spec(module) is None:
            raise SocraticError(f"--report-to {config.report_to} needs the {module} package: {install}")
    out = run_train(config)
    cards.after_training(out, config.method)
    return out


def solve(config: SolveConfig) -> Path:
    """`socratic solve`: trained students solve a split; the predictions file."""
    return run_solve(checked(config))


def evaluate(config: EvaluateConfig) -> Evaluation:
    """`socratic evaluate`: scores, failure kinds and paired tests, printed; with `config.report`, the
    report folder too. The students whose predictions were scored get their cards' results refreshed."""
    evaluation = run_evaluate(checked(config))
    if config.report:
        write_report(Path(config.report), evaluation)
    cards.after_evaluation(evaluation.paths)
    return evaluation


def run(config: RunArgs) -> Path | str | object:
    """`socratic run`: the whole pipeline (the run folder); with `dry_run` its plan and rehearsal, with
    `status` the table of where it stands."""
    config = checked(config)
    if config.status:
        return status_command(config)
    if config.dry_run:
        from socratic.commands.plan import dry_run

        return dry_run(load_config(config.config), config.threads)
    from socratic.commands.plan import announce

    return run_command(config, announce)


def checked(config: Config) -> Config:
    """`config` with every value checked as its command's flags are (type, choices, bounds): a config built
    in Python gets the same one-line error as the command line."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise SocraticError(f"expected a stage config (e.g. socratic.TrainConfig(...)), not {type(config).__name__}")
    values: dict[str, Any] = {}
    for option in options.options(type(config)):
        holder = getattr(config, option.group) if option.group else config
        values[option.name] = getattr(holder, option.name)
    return options.build(type(config), values)
