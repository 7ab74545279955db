"""The `socratic` command: a thin layer that parses flags and calls one function per stage.

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
import contextlib
import dataclasses
import logging
import signal
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from socratic.commands import ask as ask_module
from socratic.commands import export as export_module
from socratic.commands import pipeline as pipeline_module
from socratic.commands import serve as serve_module
from socratic.commands import solve as solve_module
from socratic.commands.ask import AskConfig, run_ask
from socratic.commands.export import ExportConfig, run_export
from socratic.commands.pipeline import RunArgs, load_config, run_command, stage_section, status_command
from socratic.commands.serve import ServeConfig, run_serve
from socratic.commands.solve import SolveConfig, run_solve
from socratic.core import config, console
from socratic.core.errors import SocraticError, describe_os_error
from socratic.core.records import Problem, to_json
from socratic.core.version import __version__
from socratic.scoring import evaluate as evaluate_module
from socratic.scoring.evaluate import EvaluateConfig
from socratic.scoring.report import run_report
from socratic.tasks import BENCHMARKS
from socratic.tasks.options import DATASET_HELP, DataOptions
from socratic.teacher import annotate as annotate_module
from socratic.teacher.annotate import AnnotateConfig, run_annotate
from socratic.training import train as train_module
from socratic.training.train import TrainConfig, run_train
from socratic.weights import models

CONFIG_HELP = (
    "read options from this TOML file's [{section}] section (the file `socratic run --config` takes; a shipped "
    "config's name works too); flags given here override it"
)


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

    data = commands.add_parser(
        "data",
        help="look at the datasets: show problems, count them",
        description="Look at the benchmark datasets shipped with socratic, or at your own.",
    )
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="<show|stats>")
    show = data_commands.add_parser(
        "show",
        help="print problems with their gold answers and human steps",
        description="Print problems of one split, with gold answers and (GSM8K) the human Socratic steps.",
        epilog="example: socratic data show --dataset gsm8k --split test --limit 3",
    )
    show.add_argument("--json", action="store_true", help="print Problem records as JSON lines instead")
    config.add_arguments(show, DataOptions)
    show.set_defaults(handler=run_data_show)

    stats = data_commands.add_parser(
        "stats",
        help="count problems per split",
        description="Count the problems of every split, with answer kinds and human annotations.",
        epilog="example: socratic data stats   (all shipped benchmarks)",
    )
    stats.add_argument(
        "--dataset", action="append", help=DATASET_HELP + "; repeat for several (default: every shipped benchmark)"
    )
    config.add_arguments(stats, DataOptions, "fields of your own file", skip=("dataset", "split", "limit", "offset"))
    stats.set_defaults(handler=run_data_stats)

    stage_command(
        commands,
        "annotate",
        annotate_module,
        "a teacher (or the human annotators) writes Socratic or CoT chains; correct ones are kept",
        AnnotateConfig,
        run_annotate,
    )
    stage_command(
        commands,
        "train",
        train_module,
        "fine-tune a small student on chains: answer, cot, unified or iterative (qg + qa), or qg / qa alone",
        TrainConfig,
        run_train,
    )
    stage_command(
        commands,
        "solve",
        solve_module,
        "trained students solve a dataset split: answer, cot, unified, or the iterative QG <-> QA loop",
        SolveConfig,
        run_solve,
    )

    evaluate = stage_parser(
        commands,
        "evaluate",
        evaluate_module,
        "accuracy with 95%% confidence intervals, failure breakdown, markdown table, plot and HTML report",
    )
    config.add_arguments(evaluate, EvaluateConfig)
    evaluate.set_defaults(handler=lambda args: run_report(config.from_args(EvaluateConfig, args)))

    run = stage_parser(
        commands,
        "run",
        pipeline_module,
        "the whole pipeline on one command: chains -> four students -> solve -> report (default: a quick CPU demo)",
    )
    config.add_arguments(run, RunArgs)
    run.set_defaults(handler=lambda args: run_or_plan(config.from_args(RunArgs, args)))

    ask = stage_parser(
        commands, "ask", ask_module, "a trained student answers your problem, its dialogue streamed as it is written"
    )
    ask.add_argument("problem", nargs="?", help="the problem (default: stdin, or a prompt on a terminal)")
    config.add_arguments(ask, AskConfig)
    ask.set_defaults(handler=lambda args: run_ask(config.from_args(AskConfig, args), args.problem))

    serve = stage_parser(
        commands, "serve", serve_module, "an OpenAI-compatible HTTP server over a trained student (or pair)"
    )
    config.add_arguments(serve, ServeConfig)
    serve.set_defaults(handler=lambda args: run_serve(config.from_args(ServeConfig, args)))

    export = stage_parser(
        commands,
        "export",
        export_module,
        "a student as a GGUF with its prompt template and Modelfile (llama.cpp, Ollama)",
    )
    config.add_arguments(export, ExportConfig)
    export.set_defaults(handler=lambda args: run_export(config.from_args(ExportConfig, args)))

    models.add_commands(commands)
    return parser


def run_or_plan(args: RunArgs) -> object:
    """`socratic run`, or with --dry-run its plan and rehearsal (`plan.py`), or with --status where it stands."""
    if args.status:
        return status_command(args)
    if args.dry_run:
        from socratic.commands.plan import dry_run

        return dry_run(load_config(args.config), args.threads)
    from socratic.commands.plan import announce

    return run_command(args, announce)


def stage_parser(
    commands: argparse._SubParsersAction, name: str, module: object, help_text: str
) -> argparse.ArgumentParser:
    """A pipeline command whose --help is its module's docstring: the example commands that open it,
    then the explanation, so the two cannot disagree."""
    _, examples, description = module.__doc__.split("\n\n", 2)
    return commands.add_parser(
        name,
        help=help_text,
        description=description,
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def stage_command(
    commands: argparse._SubParsersAction,
    name: str,
    module: object,
    help_text: str,
    config_class: type,
    run: Callable[[Any], object],
) -> None:
    """A pipeline stage's command: its options from `config_class`, optionally read from a config file's
    [name] section first (`--config`), with the flags typed on top."""
    parser = stage_parser(commands, name, module, help_text)
    parser.add_argument("--config", metavar="FILE", help=CONFIG_HELP.format(section=name))
    config.add_arguments(parser, config_class)

    def handler(args: argparse.Namespace) -> None:
        section, source = stage_section(args.config, name) if args.config else ({}, "")
        run(config.from_args(config_class, args, section, source))

    parser.set_defaults(handler=handler)


SHOWN_BY_DEFAULT = 5


def run_data_show(args: argparse.Namespace) -> None:
    data = config.from_args(DataOptions, args)
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


def run_data_stats(args: argparse.Namespace) -> None:
    data = config.from_args(DataOptions, argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "dataset"}))
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


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Inside the block `kill PID` (SIGTERM) stops a command as Ctrl-C does, so the work in flight is
    saved first; the previous handler comes back after it (`main` may run inside another program).

    A command a script starts in the background (`nohup socratic run ... &`) ignores SIGINT, so TERM
    is how it is stopped; without this it would die at once and lose the replies being decoded."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():  # only the main thread has handlers
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="socratic: %(levelname)s: %(message)s"
    )
    console.quiet_libraries(verbose=args.verbose)
    try:
        with terminate_as_interrupt():
            args.handler(args)
    except SocraticError as e:
        message = " ".join(str(e).splitlines())  # one line, even if a file name or a value holds a newline
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
