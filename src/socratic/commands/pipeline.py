"""`socratic run`: the whole pipeline in one command: chains, students, solving, the report.

    socratic run                                          # the demo: 4 students on SVAMP, ~16 min on 2 CPU cores
    socratic run --config tiny                            # a pipeline check in minutes (no method signal)
    socratic run --config configs/cpu-gsm8k.toml          # the comparison that fits 2 CPU cores
    socratic run --config configs/paper-gsm8k.toml --out runs/paper-gsm8k     # the paper's setting (GPU)
    socratic run --config paper-gsm8k --dry-run           # its plan and a rehearsal on a tiny model, in seconds
    socratic run --config cpu-gsm8k --out runs/g --only cot     # one student; another process runs the others

Stages, each one of the other commands: `annotate` (human chains, or a teacher) -> `train` an
answer-only, a CoT, a unified and an iterative (QG + QA) student of the same base model on the same
training problems -> `solve` the test split with each -> `evaluate`: the table and the paired tests
are printed, then the result in plain words (the better Socratic student against CoT and against
answer-only, `evaluate.verdict`), and the report (results.md, accuracy.png, report.html: every
problem, student by student, filterable; see `socratic.scoring.report`) is written to
`<run>/report` and the page's path printed. The run opens with what it will do and an estimate of
each stage's time here (`plan.announce`); each stage then prints its estimate and its real time.
Each stage runs in a process of its own (`core.processes`), so that what one student held is given
back before the next is trained: the run's memory peaks at its largest stage, not at their sum.

A run lives in `runs/<name>-<date>-<time>/` (or `--out`; its layout: `run_folder.RunFolder`), with
`run.json` recording its settings and the time of each stage. Every stage resumes, so after a kill
`socratic run` with the same config continues the unfinished run instead of starting a new one, even
in a later session.

A config file is TOML: the run's own keys (`RunConfig`: name, methods) and one section per stage,
[annotate], [train] and [solve], whose keys are exactly the options of that stage's command (see
`socratic train --help`; a key left out keeps the command's default). The stage commands read the
same file with `--config`, so `socratic train --config my.toml --method cot` trains as the run would.
The run sets the paths itself (chains, student folders, predictions) and trains and solves each of
its `methods`. The shipped configs in `configs/` explain every value they set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socratic.commands.run_folder import RunFolder
from socratic.commands.solve import SolveConfig, run_solve
from socratic.core import config as options
from socratic.core.errors import SocraticError, did_you_mean
from socratic.core.jsonl import MAX_DOCUMENT_BYTES, parse_toml, read_state, write_atomic
from socratic.core.locks import holding_lock
from socratic.core.machine import release_freed_memory
from socratic.core.processes import run_in_own_process
from socratic.scoring import cards
from socratic.scoring.evaluate import EvaluateConfig, run_evaluate, verdict
from socratic.scoring.report import write_report
from socratic.solving.predictions import already_solved
from socratic.tasks import BENCHMARKS
from socratic.teacher.annotate import AnnotateConfig, run_annotate
from socratic.text.methods import METHODS, roles_to_train
from socratic.training.config import TrainConfig
from socratic.training.train import train_role

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "default"  # the name of the config shipped inside the package, used with no --config
SECTIONS: dict[str, type] = {"annotate": AnnotateConfig, "train": TrainConfig, "solve": SolveConfig}


@dataclass(frozen=True)
class RunConfig:
    """The run's own keys, at the top of a config file; each stage's options are in its own section."""

    name: str = field(default="default", metadata={"help": "names the run folder: runs/<name>-<date>-<time>"})
    methods: tuple[str, ...] = field(
        default=tuple(METHODS), metadata={"help": "the methods to train and compare", "choices": tuple(METHODS)}
    )


@dataclass(frozen=True)
class PipelineConfig:
    """A whole config file: the run's keys and the base options of each stage."""

    run: RunConfig = field(default_factory=RunConfig)
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    solve: SolveConfig = field(default_factory=SolveConfig)

    def __post_init__(self) -> None:
        # Refused here, not after hours of training when the first one-pass student comes to solve.
        one_pass = [m for m in self.run.methods if not METHODS[m].iterative]
        if self.solve.qg_temperature and one_pass:
            raise SocraticError(
                f"[solve] qg_temperature samples the question generator, which {', '.join(one_pass)} do not "
                'have: leave it out, or run methods = ["iterative"] alone'
            )

    def as_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))


@dataclass(frozen=True)
class RunArgs:
    config: str | None = field(
        default=None,
        metadata={
            "help": "a TOML file, or the name of a shipped config: default (the SVAMP demo: four students on "
            "the shipped chains, ~15 min on 2 CPU cores), tiny (a pipeline check, no method signal), cpu-gsm8k, "
            "cpu-gsm8k-2400, cpu-gsm8k-full, cpu-svamp, cpu-svamp-diverse, cpu-strategyqa (the comparisons that fit "
            "2 CPU cores), "
            "paper-gsm8k, paper-svamp, paper-strategyqa (the paper's settings, for a GPU)"
        },
    )
    out: str | None = field(
        default=None,
        metadata={"help": "run folder (default: runs/<name>-<date>-<time>, or the unfinished run of this config)"},
    )
    threads: int | None = field(default=None, metadata={"help": "CPU threads (default: its usable cores)", "min": 1})
    only: tuple[str, ...] | None = field(
        default=None,
        metadata={
            "help": "train and solve only these of the config's methods, so that several processes share one "
            "run folder (--out), each on its own cores or GPU: `--only cot` beside `--only unified iterative`. "
            "A student being trained by another process is refused at once; the run that finishes the last "
            "method writes the report. Start them once the chains exist (a teacher's replies have one writer)",
            "choices": tuple(METHODS),
        },
    )
    status: bool = field(
        default=False,
        metadata={
            "help": "print where the run stands (chains; each student trained, or its training step; test "
            "problems solved and right so far; what runs now) and exit; it only reads the folder"
        },
    )
    dry_run: bool = field(
        default=False,
        metadata={
            "help": "print the plan (stages, examples, tokens, steps, student size, estimated time) and train "
            "each student two steps on a tiny model of its architecture, instead of running"
        },
    )


# --- config files ------------------------------------------------------------------------------------------


def read_config_file(path: str | Path | None) -> tuple[dict[str, Any], str]:
    """The TOML values of a config file (or a shipped config by name) and how to name it in errors."""
    from importlib.resources import files

    folder = files("socratic").joinpath("configs")
    shipped = {p.name.removesuffix(".toml"): p for p in folder.iterdir() if p.name.endswith(".toml")}
    name = DEFAULT_CONFIG if path is None else str(path)
    if Path(name).is_file():
        source = name
        if Path(name).stat().st_size > MAX_DOCUMENT_BYTES:
            raise SocraticError(f"{source}: {Path(name).stat().st_size:,} bytes is too large for a config file")
        try:
            text = Path(name).read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise SocraticError(f"{source}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    elif name in shipped:  # `--config cpu-gsm8k` names a shipped config
        text, source = shipped[name].read_text(encoding="utf-8"), f"configs/{name}.toml"
    else:
        raise SocraticError(f"config file not found: {name} (shipped configs: {', '.join(sorted(shipped))})")
    return parse_toml(text, source), source


def split_sections(values: dict[str, Any], source: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(the run's own keys, each stage's section), after checking every top-level key."""
    run_keys = {o.name for o in options.options(RunConfig)}
    run: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for key, value in values.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise SocraticError(f"{source}: {key!r} must be a section, [{key}]")
            sections[key] = value
        elif key in run_keys:
            run[key] = value
        else:
            owners = [name for name, cls in SECTIONS.items() if key in {o.name for o in options.options(cls)}]
            if owners:
                raise SocraticError(f"{source}: {key!r} is an option of [{owners[0]}]: move it into that section")
            known = sorted(run_keys | set(SECTIONS))
            raise SocraticError(f"{source}: unknown key {key!r}{did_you_mean(key, known)}")
    return run, sections


def load_config(path: str | Path | None) -> PipelineConfig:
    """A whole config file (or the shipped default), every key and value checked."""
    return config_from_values(*read_config_file(path))


def config_from_values(values: dict[str, Any], source: str = "config") -> PipelineConfig:
    """A `PipelineConfig` from a config file's values (as TOML reads them), every key and value checked."""
    run, sections = split_sections(values, source)
    built = {
        name: options.build(cls, sections[name], lambda key, name=name: f"{source}: [{name}] {key!r}")
        for name, cls in SECTIONS.items()
    }
    return PipelineConfig(options.build(RunConfig, run, lambda key: f"{source}: {key!r}"), **built)


def stage_section(path: str | Path, stage: str) -> tuple[dict[str, Any], str]:
    """The [stage] section of a config file for a stage command's --config (the whole file is checked)."""
    values, source = read_config_file(path)
    config_from_values(values, source)
    return split_sections(values, source)[1][stage], f"{source} [{stage}]"


def settings_changed(recorded: Any, config: PipelineConfig) -> str | None:
    """None if a run.json's recorded settings are `config`'s, else the first difference, e.g.
    "[solve] max_steps: 10, now 6".

    The record is read again as a config file, so that a run started by an older version continues
    after an upgrade: an option added since takes its default, one moved into a group is found there.
    """
    if not isinstance(recorded, dict):
        return "no settings recorded"
    try:
        before = config_from_values(_as_file_values(recorded), "run.json")
    except SocraticError as e:
        return str(e)
    old, new = _option_values(before), _option_values(config)
    for key, value in new.items():
        if old[key] != value:
            return f"{key}: {old[key]!r}, now {value!r}"
    return None


def _as_file_values(recorded: dict[str, Any]) -> dict[str, Any]:
    """`PipelineConfig.as_json()` (sections of nested groups) as a config file spells it (flat sections)."""

    def flat(values: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in values.items():
            out.update(flat(value) if isinstance(value, dict) else {key: value})
        return out

    values = flat(recorded.get("run", {}))
    values.update({name: flat(section) for name, section in recorded.items() if name in SECTIONS})
    return values


def _option_values(config: PipelineConfig) -> dict[str, Any]:
    """{"[solve] max_steps": 10, "name": "cpu-gsm8k", ...}: every option of the config by its file name."""
    values = _as_file_values(config.as_json())
    found = {key: value for key, value in values.items() if key not in SECTIONS}
    for name in SECTIONS:
        found.update({f"[{name}] {key}": value for key, value in values[name].items()})
    return found


# --- the run -----------------------------------------------------------------------------------------------


def find_run_folder(config: PipelineConfig, out: str | None, runs: Path = Path("runs")) -> RunFolder:
    """`--out`, else the latest unfinished run of the same settings, else a new timestamped folder."""
    if out:
        return RunFolder(Path(out))
    name = config.run.name
    for folder in (RunFolder(p) for p in sorted(runs.glob(f"{name}-*"), reverse=True)):
        if not folder.is_run() or folder.finished():
            continue  # not a run, or a finished one
        try:
            recorded = read_run_record(folder.record).get("config")
        except SocraticError as e:  # not this run's to repair: say so, and look further
            log.warning("%s; it is not continued", e)
            continue
        if settings_changed(recorded, config) is None:
            log.warning("continuing the unfinished run %s", folder.root)
            return folder
    return RunFolder(runs / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")


def stage_configs(config: PipelineConfig, folder: RunFolder, threads: int | None = None) -> dict[str, Any]:
    """What each stage of the run is given: the file's sections, with the run's own paths and methods.

    {"annotate": AnnotateConfig, "train <method>": TrainConfig, "solve <method>": SolveConfig, ...}
    """
    replace = dataclasses.replace
    chains = folder.chains
    annotate = replace(config.annotate, out=str(chains))
    stages: dict[str, Any] = {"annotate": annotate if threads is None else replace(annotate, threads=threads)}
    train_data = config.train.data
    if train_data.dataset is None and config.annotate.data.dataset not in (None, *BENCHMARKS):
        # The user's own file: training reads the chains' problems from it, with the same field options.
        train_data = replace(config.annotate.data, split=None, limit=train_data.limit, offset=train_data.offset)
    for method in config.run.methods:
        student = folder.student(method)
        train = replace(config.train, method=method, chains=str(chains), out=str(student), data=train_data)
        student = replace(config.solve.student, **folder.solve_students(method))
        solve = replace(config.solve, method=method, out=None, student=student)
        if threads is not None:
            train = replace(train, threads=threads)
            solve = replace(solve, runtime=replace(solve.runtime, threads=threads))
        stages[f"train {method}"] = train
        stages[f"solve {method}"] = solve
    return stages


def run_pipeline(
    config: PipelineConfig,
    root: Path,
    threads: int | None = None,
    only: tuple[str, ...] | None = None,
    estimates: dict[str, float] | None = None,
    own_processes: bool = True,
) -> Path:
    """Run (or continue) the whole pipeline in the folder `root`; with `only`, just those methods' students, and
    the report once every method's predictions are complete (whichever process completes them).
    `estimates` (seconds by stage name, `plan.announce`'s) are shown as each stage starts. With
    `own_processes` the annotation, each role's training and each solve run in a process of their own,
    so that the run's memory peaks at one stage's peak (`core.processes`); without, in this one (no
    process to start, which tests of the flow use)."""
    mine = _methods_to_run(config, only)
    folder = RunFolder(root)
    folder.root.mkdir(parents=True, exist_ok=True)
    folder.ignore_weights()
    record = _Record(folder.record, config, estimates)
    release_freed_memory()  # what a caller held before (the plan's speed measurement, run in this process)
    run_stage = _in_own_process if own_processes else _in_this_process
    stages = stage_configs(config, folder, threads)
    test_task, test_split, test_problems = config.solve.data.load("test")  # read once for the whole run
    _warn_if_trained_on_the_test_problems(config, test_task.name, test_split)
    with record.stage("annotate"):
        run_stage("annotate", run_annotate, stages["annotate"])
    wanted = {p.id for p in test_problems}
    predictions = {method: folder.predictions(method, test_task.name, test_split) for method in config.run.methods}
    for method in mine:
        target = predictions[method]
        if _solved_everything(target, method, wanted):
            print(f"== {method}: every test problem already solved, nothing to train or solve", flush=True)
            continue
        with record.stage(f"train {method}"):
            for role in roles_to_train(method):  # QG and QA each in their own process, too
                run_stage(f"train {method}", train_role, stages[f"train {method}"], role)
            cards.after_training(stages[f"train {method}"].out, method)
        with record.stage(f"solve {method}"):
            run_stage(f"solve {method}", run_solve, dataclasses.replace(stages[f"solve {method}"], out=str(target)))
    waiting = [m for m in config.run.methods if not _solved_everything(predictions[m], m, wanted)]
    if waiting:
        print(f"== report: when {', '.join(waiting)} {'is' if len(waiting) == 1 else 'are'} solved", flush=True)
        return folder.root
    with record.stage("evaluate"):
        evaluation = run_evaluate(EvaluateConfig([str(p) for p in predictions.values()]))
        page = write_report(folder.report, evaluation)
        cards.after_evaluation(list(predictions.values()))
    for line in verdict(evaluation.scores, evaluation.pairs):
        print(line, flush=True)
    print(f"report: {page} (open it in a browser: every problem, student by student)", flush=True)
    return folder.root


def _in_own_process(name: str, stage: Callable[..., object], *args: Any) -> None:
    run_in_own_process(stage, *args, name=name)


def _in_this_process(name: str, stage: Callable[..., object], *args: Any) -> None:
    stage(*args)
    release_freed_memory()  # the next stage starts from what the run holds, not above this one's peak


def _methods_to_run(config: PipelineConfig, only: tuple[str, ...] | None) -> tuple[str, ...]:
    if only is None:
        return config.run.methods
    strangers = [m for m in only if m not in config.run.methods]
    if strangers:
        raise SocraticError(
            f"--only {' '.join(strangers)}: not among this run's methods ({', '.join(config.run.methods)})"
        )
    return tuple(m for m in config.run.methods if m in only)  # in the config's order


def _warn_if_trained_on_the_test_problems(config: PipelineConfig, test_name: str, test_split: str) -> None:
    train_task = config.annotate.data.task()
    if (train_task.name, config.annotate.data.split_of(train_task, "train")) == (test_name, test_split):
        log.warning(
            "the students are trained and tested on the same problems (%s/%s): give [solve] its own dataset "
            "or split for a fair test",
            test_name,
            test_split,
        )


def _solved_everything(predictions: Path, method: str, wanted: set[str]) -> bool:
    """Whether `predictions` answers every test problem of the run, so its student is not needed.

    This lets a run folder committed without its weights (`RunFolder.ignore_weights`) continue on another
    machine: finished methods are kept, only the unfinished ones are trained and solved there.
    """
    return predictions.is_file() and wanted <= already_solved(predictions, method)


class _Record:
    """`run.json`: the settings and each stage's wall time, rewritten after every stage. Processes that
    share a run (`--only`) each add their own stages: the file is read again, under a lock, before
    every write, so that none overwrites another's."""

    def __init__(self, path: Path, config: PipelineConfig, estimates: dict[str, float] | None = None):
        self.path, self.estimates = path, estimates or {}
        with self._locked():
            found = self._read()
            before = found.get("config")
            changed = settings_changed(before, config) if isinstance(before, dict) and "annotate" in before else None
            if changed:  # (a run.json from before configs had sections is adopted)
                raise SocraticError(
                    f"{path.parent} is a run of other settings ({changed}): choose another --out, or "
                    "rerun it with the config it was started with"
                )
            self._write({"config": config.as_json(), "stages": found.get("stages", {})})

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        estimate = self.estimates.get(name)
        print(f"== {name}" + (f" (estimated {_minutes(estimate)})" if estimate and estimate >= 10 else ""), flush=True)
        started = time.time()
        yield
        with self._locked():  # (a stage that failed records no time)
            data = self._read()
            data["stages"][name] = round(data["stages"].get(name, 0.0) + time.time() - started, 1)
            self._write(data)
        print(f"   {name}: done in {_minutes(time.time() - started)}", flush=True)

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return holding_lock(self.path.with_name(self.path.name + ".lock"), wait=True)

    def _read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {"stages": {}}
        return read_run_record(self.path)

    def _write(self, data: dict[str, Any]) -> None:
        write_atomic(self.path, [json.dumps(data, indent=2) + "\n"])


RUN_RECORD_FIX = "delete it (the run's files are kept; its stage times are lost) or choose another --out"


def read_run_record(path: Path) -> dict[str, Any]:
    """A run folder's run.json: {"config": ..., "stages": {name: seconds}}; a damaged one is one line."""
    found = read_state(path, RUN_RECORD_FIX)
    stages = found.setdefault("stages", {})
    if not isinstance(stages, dict) or not all(
        isinstance(t, int | float) and not isinstance(t, bool) for t in stages.values()
    ):
        raise SocraticError(f"{path} is damaged ('stages' is not a table of seconds): {RUN_RECORD_FIX}")
    return found


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def status_command(args: RunArgs) -> str:
    from socratic.commands.status import run_status

    config = load_config(args.config)
    task, split, problems = config.solve.data.load("test")
    folder = find_run_folder(config, args.out)
    table = run_status(config.run.methods, folder, task.name, split, {p.id for p in problems})
    print(table)
    return table


def run_command(
    args: RunArgs, announce: Callable[[PipelineConfig, Path, int | None], dict[str, float]] | None = None
) -> Path:
    """`socratic run`; `announce` (`plan.announce`, given by the CLI) first says what the run will do and
    how long each stage should take (in a process of its own: it measures a model's speed)."""
    config = load_config(args.config)
    if args.only and not args.out:
        raise SocraticError("--only shares a run folder between processes: give them all the same --out")
    folder = find_run_folder(config, args.out).root
    estimates = run_in_own_process(announce, config, folder, args.threads, name="plan") if announce else None
    return run_pipeline(config, folder, args.threads, args.only, estimates)
