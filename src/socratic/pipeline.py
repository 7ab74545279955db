"""`socratic run`: the whole pipeline in one command: chains, students, solving, the report.

    socratic run                                          # the quick CPU demo (configs/default.toml)
    socratic run --config configs/cpu-gsm8k.toml          # the comparison that fits 2 CPU cores
    socratic run --config configs/paper-gsm8k.toml --out runs/paper-gsm8k     # the paper's setting (GPU)

Stages, each one of the other commands: `annotate` (human chains, or a teacher) -> `train` an
answer-only, a CoT, a unified and an iterative (QG + QA) student of the same base model on the same
training problems -> `solve` the test split with each -> `evaluate`: the table is printed and the
report (results.md, accuracy.png, report.html with every trace) written to `<run>/report`.

A run lives in `runs/<name>-<date>-<time>/` (or `--out`), with `run.json` recording its settings and
the time of each stage. Every stage resumes, so after a kill `socratic run` with the same config
continues the unfinished run instead of starting a new one, even in a later session. A config file
is TOML whose keys are the fields of `RunConfig`; each shipped config in `configs/` sets and explains
all of them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from socratic.errors import SocraticError, unknown_name

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "default"  # the name of the config shipped inside the package, used with no --config


@dataclass(frozen=True)
class RunConfig:
    """What one pipeline run does. Field names are the keys of a config file."""

    name: str = "default"
    dataset: str = "gsm8k"
    teacher: str = "human"  # `socratic annotate --teacher` spec
    model: str = "smollm2-135m"
    methods: tuple[str, ...] = ("answer", "cot", "unified", "iterative")
    train_problems: int | None = 16  # None: the whole training split
    test_problems: int | None = 20  # None: the whole test split
    epochs: float = 2.0
    learning_rate: float | None = None
    lora_r: int | None = None
    batch_size: int = 2
    max_length: int = 512
    calculator: bool = True
    engine: str = "hf"
    solve_batch_size: int = 32
    max_new_tokens: int = 256
    max_steps: int = 6
    seed: int = 0


@dataclass(frozen=True)
class RunArgs:
    config: str | None = field(
        default=None,
        metadata={
            "help": "a TOML file, or the name of a shipped config: default (the quick CPU demo), cpu-gsm8k, "
            "cpu-svamp, cpu-strategyqa (the comparisons that fit 2 CPU cores), paper-gsm8k, paper-svamp, "
            "paper-strategyqa (the paper's settings, for a GPU)"
        },
    )
    out: str | None = field(
        default=None,
        metadata={"help": "run folder (default: runs/<name>-<date>-<time>, or the unfinished run of this config)"},
    )
    threads: int | None = field(default=None, metadata={"help": "CPU threads (default: all cores)"})


def load_config(path: str | Path | None) -> RunConfig:
    """A `RunConfig` from a TOML file (or the shipped default), with clear errors for unknown keys."""
    from importlib.resources import files

    shipped = {p.name.removesuffix(".toml"): p for p in files("socratic").joinpath("configs").iterdir()}
    name = DEFAULT_CONFIG if path is None else str(path)
    if Path(name).is_file():
        text, source = Path(name).read_text(encoding="utf-8"), name
    elif name in shipped:  # `--config cpu-gsm8k` names a shipped config
        text, source = shipped[name].read_text(encoding="utf-8"), f"configs/{name}.toml"
    else:
        raise SocraticError(f"config file not found: {name} (shipped configs: {', '.join(sorted(shipped))})")
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SocraticError(f"{source}: not valid TOML: {e}") from None
    known = {f.name: f for f in dataclasses.fields(RunConfig)}
    for key in values:
        if key not in known:
            raise unknown_name(f"key in {source}", key, known)
    if "methods" in values:
        values["methods"] = tuple(values["methods"])
        bad = [m for m in values["methods"] if m not in ("answer", "cot", "unified", "iterative")]
        if bad:
            raise SocraticError(f"{source}: unknown method '{bad[0]}' (answer, cot, unified, iterative)")
    return RunConfig(**values)


def run_folder(config: RunConfig, out: str | None, runs: Path = Path("runs")) -> Path:
    """`--out`, else the latest unfinished run of the same settings, else a new timestamped folder."""
    if out:
        return Path(out)
    settings = dataclasses.asdict(config)
    for folder in sorted(runs.glob(f"{config.name}-*"), reverse=True):
        record = folder / "run.json"
        unfinished = record.is_file() and not (folder / "report" / "results.md").exists()
        if unfinished and json.loads(record.read_text(encoding="utf-8")).get("config") == _jsonable(settings):
            log.warning("continuing the unfinished run %s", folder)
            return folder
    return runs / f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def _jsonable(settings: dict) -> dict:
    return json.loads(json.dumps(settings))


def run_pipeline(config: RunConfig, folder: Path, threads: int | None = None) -> Path:
    from socratic.evaluate import EvaluateConfig, run_evaluate
    from socratic.solve import SolveConfig, run_solve
    from socratic.teacher.annotate import AnnotateConfig, run_annotate
    from socratic.train import TrainConfig, run_train

    folder.mkdir(parents=True, exist_ok=True)
    _ignore_weights(folder)
    record = _Record(folder / "run.json", config)
    chains = folder / "chains.jsonl"
    with record.stage("annotate"):
        run_annotate(
            AnnotateConfig(
                dataset=config.dataset,
                split="train",
                style="socratic",
                teacher=config.teacher,
                limit=config.train_problems,
                out=str(chains),
            )
        )
    predictions = []
    for method in config.methods:
        student = folder / "students" / method
        target = student / f"predictions.{config.dataset}.test.jsonl"
        if _solved_everything(target, method, config):
            print(f"== {method}: every test problem already solved, nothing to train or solve", flush=True)
            predictions.append(str(target))
            continue
        with record.stage(f"train {method}"):
            run_train(
                TrainConfig(
                    mode=method,
                    chains=str(chains),
                    model=config.model,
                    out=str(student),
                    epochs=config.epochs,
                    learning_rate=config.learning_rate,
                    lora_r=config.lora_r,
                    batch_size=config.batch_size,
                    max_length=config.max_length,
                    threads=threads,
                    seed=config.seed,
                    save_steps=20,
                )
            )
        students = (
            {"qg": str(student / "qg"), "qa": str(student / "qa")} if method == "iterative" else {"model": str(student)}
        )
        with record.stage(f"solve {method}"):
            run_solve(
                SolveConfig(
                    mode=method,
                    dataset=config.dataset,
                    split="test",
                    limit=config.test_problems,
                    out=str(target),
                    engine=config.engine,
                    batch_size=config.solve_batch_size,
                    # Several batches per chunk keep llama.cpp's batch full (one-pass modes; the
                    # iterative loop keeps solve_batch_size problems active and saves each as it ends).
                    chunk=4 * config.solve_batch_size,
                    max_new_tokens=config.max_new_tokens,
                    max_steps=config.max_steps,
                    calculator=config.calculator,
                    threads=threads,
                    **students,
                )
            )
        predictions.append(str(target))
    with record.stage("evaluate"):
        run_evaluate(EvaluateConfig(predictions, report=str(folder / "report")))
    print(f"report: {folder / 'report' / 'report.html'}")
    return folder


def _solved_everything(predictions: Path, method: str, config: RunConfig) -> bool:
    """Whether `predictions` answers every test problem of the run, so its student is not needed.

    This lets a run folder committed without its weights (see `_ignore_weights`) continue on another
    machine: finished methods are kept, only the unfinished ones are trained and solved there.
    """
    from socratic.solve import already_solved
    from socratic.tasks import load_task

    if not predictions.is_file():
        return False
    task = load_task(config.dataset)
    wanted = {p.id for p in task.load("test", config.test_problems)}
    return wanted <= already_solved(predictions, method)


_WEIGHTS_GITIGNORE = """\
# Written by `socratic run`: commit the run folder without its weights and checkpoints. Predictions,
# loss curves, settings and the report are kept (not report.html: megabytes, rebuilt from the
# predictions by `socratic evaluate`); a later `socratic run` with the same config skips the methods
# whose predictions are complete.
students/**/*
!students/**/
!students/**/predictions.*
!students/**/loss.jsonl
!students/**/loss.png
!students/**/socratic.json
!students/**/manifest.json
report/report.html
"""


def _ignore_weights(folder: Path) -> None:
    (folder / ".gitignore").write_text(_WEIGHTS_GITIGNORE, encoding="utf-8")


class _Record:
    """`run.json`: the settings and each stage's wall time, rewritten after every stage."""

    def __init__(self, path: Path, config: RunConfig):
        self.path = path
        found = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        self.data = {"config": _jsonable(dataclasses.asdict(config)), "stages": found.get("stages", {})}
        self._write()

    def stage(self, name: str):
        record = self

        class _Stage:
            def __enter__(self):
                print(f"== {name}", flush=True)
                self.started = time.time()

            def __exit__(self, kind, *rest):
                if kind is None:
                    previous = record.data["stages"].get(name, 0.0)
                    record.data["stages"][name] = round(previous + time.time() - self.started, 1)
                    record._write()

        return _Stage()

    def _write(self) -> None:
        self.path.write_text(json.dumps(self.data, indent=2) + "\n", encoding="utf-8")


def run_command(args: RunArgs) -> Path:
    config = load_config(args.config)
    return run_pipeline(config, run_folder(config, args.out), args.threads)
