"""Stage 3: trained students solve a dataset split; every attempt is saved as a `Prediction`.

    socratic solve --method unified --model runs/u --dataset gsm8k --limit 200
    socratic solve --method iterative --qg runs/it/qg --qa runs/it/qa --dataset gsm8k
    socratic solve --method iterative --qa runs/it/qa --oracle          # human subquestions ("with guidance")
    socratic solve --method unified --model runs/u --samples 5 --temperature 0.7   # self-consistency
    socratic solve --method iterative --qg runs/it/qg --qa runs/it/qa --samples 5 --qg-temperature 0.7
                                        # self-consistency over decompositions: QG sampled, QA greedy
    socratic solve --config run.toml --method cot --model runs/cot     # the [solve] section of a config file

One-pass methods (`answer`, `cot`, `unified`) write their whole completion in one generation. The
iterative pair works in sync over many problems at once: every active problem asks QG for its next
subquestion in one batch, then QA answers all of them in one batch; a problem leaves the active set
when QG writes the end marker or after `--max-steps` pairs, and the next waiting problem takes its
place (at most `--batch-size` are active), so one problem ending early never holds up the others.
The answer is read from the answer line (one-pass) or the last solution (iterative, as in the
paper). With `--samples k`, k attempts are sampled per problem and the most frequent answer wins
(self-consistency; a tie goes to the answer of the earliest attempt among the tied). For the pair,
`--qg-temperature T` samples QG's subquestions alone and QA answers each greedily: the k attempts are
k decompositions of the problem, and the arithmetic under each is the QA's best. Each prediction
records the votes, every attempt's answer and the tokens all attempts generated (the vote's cost).

The calculator writes the true value of every `<<expr=` annotation while decoding (`--no-calculator`
to measure what it adds). Predictions are appended to the output file as they are made (one-pass:
chunk by chunk; iterative: each problem when it ends); rerunning the same command continues with the
problems not saved yet.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from socratic.core import resume
from socratic.core.errors import SocraticError
from socratic.core.jsonl import JsonlAppender, read_jsonl
from socratic.core.manifest import git_commit, manifest_path, write_manifest
from socratic.core.records import Prediction, Problem
from socratic.engines import GREEDY, Engine, Sampling
from socratic.solving import students
from socratic.solving.loops import Attempt, DecodeOptions, DecodeSettings, solve_iterative, solve_one_pass
from socratic.solving.predictions import already_solved, to_prediction
from socratic.solving.students import EngineOptions, StudentOptions
from socratic.tasks.base import Task
from socratic.tasks.options import DataOptions
from socratic.text.methods import METHODS, Method, get_method
from socratic.weights import student_folder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SolveConfig:
    method: str = field(
        default="unified",
        metadata={
            "help": "answer, cot, unified (one student: --model) or iterative (--qg and --qa, or --model: the folder "
            "holding both)",
            "choices": tuple(METHODS),
            "aliases": ("--mode",),
        },
    )
    student: StudentOptions = field(default_factory=StudentOptions)
    data: DataOptions = field(default_factory=DataOptions)
    out: str | None = field(
        default=None, metadata={"help": "predictions file (default: <student>/predictions.<dataset>.<split>.jsonl)"}
    )
    runtime: EngineOptions = field(default_factory=EngineOptions)
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    oracle: bool = field(
        default=False, metadata={"help": "feed the dataset's human subquestions to QA instead of asking QG (iterative)"}
    )
    adapters: bool = field(
        default=False,
        metadata={
            "help": "iterative students trained with --lora-r: load their base model once with QG's and QA's "
            "LoRA adapters and switch between them (half the memory; hf engine)"
        },
    )
    samples: int = field(
        default=1,
        metadata={
            "help": "attempts per problem; >1 votes on the answer (self-consistency; ties go to the earliest "
            "attempt's answer)",
            "min": 1,
        },
    )
    temperature: float = field(
        default=0.0, metadata={"help": "0 = greedy; >0 samples (default 0.7 when --samples > 1)", "min": 0}
    )
    qg_temperature: float = field(
        default=0.0,
        metadata={
            "help": "iterative: sample QG's subquestions at this temperature and let QA answer greedily, so "
            "that --samples k votes over k decompositions (0 = QG follows --temperature)",
            "min": 0,
        },
    )
    chunk: int = field(
        default=64,
        metadata={
            "help": "one-pass methods: problems solved and saved together (resume granularity); the iterative "
            "loop keeps --batch-size problems active and saves each one as it finishes",
            "min": 1,
        },
    )
    seed: int = field(default=0, metadata={"help": "sampling seed"})

    def __post_init__(self) -> None:
        if self.qg_temperature and self.temperature:
            raise SocraticError("--qg-temperature keeps QA greedy: leave out --temperature (or --qg-temperature)")

    @property
    def sampling(self) -> Sampling:
        """How every line is decoded, QG's too unless --qg-temperature samples them apart."""
        if self.qg_temperature:
            return GREEDY
        temperature = self.temperature or (0.7 if self.samples > 1 else 0.0)
        return Sampling(temperature, self.seed) if temperature > 0 else GREEDY

    @property
    def qg_sampling(self) -> Sampling | None:
        return Sampling(self.qg_temperature, self.seed) if self.qg_temperature else None

    @property
    def decoding(self) -> DecodeSettings:
        return dataclasses.replace(self.decode.settings(self.sampling), qg_sampling=self.qg_sampling)

    def student_folders(self) -> dict[str, str | None]:
        """The folder given for each role the method solves with (QA only, with --oracle)."""
        method = get_method(self.method)
        folders = self.student.folders(method)
        return {"qa": folders["qa"]} if self.oracle and method.iterative else folders


# --- the command -----------------------------------------------------------------------------------------


def default_output(config: SolveConfig, task: Task, split: str) -> Path:
    folders = config.student_folders()
    student = Path(folders["qa"]).parent if "qa" in folders else Path(folders[config.method])  # type: ignore[arg-type]
    return student_folder.predictions_file(student, task.name, split, config.oracle)


def run_solve(config: SolveConfig) -> Path:
    from tqdm import tqdm

    started, commit = time.time(), git_commit()
    method = get_method(config.method)
    if config.oracle and not method.iterative:
        raise SocraticError("--oracle feeds human subquestions to a QA student: use it with --method iterative")
    if config.qg_temperature and (config.oracle or not method.iterative):
        raise SocraticError(
            "--qg-temperature samples the question generator: use it with --method iterative, without --oracle"
        )
    folders = students.check_roles(method, config.student_folders())
    task, split, problems = config.data.load("test")
    if config.oracle and not all(p.human_steps for p in problems):
        raise SocraticError(
            f"--oracle needs human subquestions, which {task.name}/{split} does not have for every problem"
        )
    out = Path(config.out) if config.out else default_output(config, task, split)
    resume.claim(out, _settings(config, method, folders, task, split), "predictions")
    out.parent.mkdir(parents=True, exist_ok=True)
    with JsonlAppender(out) as sink:  # locked first: a second run on the same file stops here, before any work
        done = already_solved(out, config.method)
        todo = [p for p in problems if p.id not in done]
        if done:
            log.warning("%s: %d problems already solved, %d to go", out, len(problems) - len(todo), len(todo))
        if todo:  # nothing to do opens no student (a finished iterative solve, resumed, had no QG to run)
            qg, qa = students.open_engines(method, folders, config.runtime, config.decoding, config.adapters)
            with tqdm(total=len(todo) * config.samples, desc=f"solve {config.method}", unit="attempt") as bar:
                if method.iterative:
                    _solve_rolling(todo, qg, qa, config, task, sink.append, bar.update)  # type: ignore[arg-type]
                else:
                    _solve_in_chunks(todo, qa, config, task, sink.append, bar.update)  # type: ignore[arg-type]
    predictions = list(read_jsonl(out, Prediction))
    correct = sum(bool(p.correct) for p in predictions)
    if todo or not manifest_path(out).exists():  # a run that solved nothing keeps the manifest of the one that did
        write_manifest(
            out,
            "solve",
            config,
            started,
            commit,
            split=split,
            problems=len(predictions),
            correct=correct,
            solve_seconds=round(time.time() - started, 1),
            solved_now=len(todo),
        )
    print(f"{out}: {correct} / {len(predictions)} correct ({100 * correct / max(len(predictions), 1):.1f} %)")
    return out


def _settings(config: SolveConfig, method: Method, folders: dict[str, str], task: Task, split: str) -> dict:
    """What shapes the predictions (`resume.claim`): which students (by what they were trained on, not
    where they lie), which problems, how they are decoded."""
    infos = {role: student_folder.read_info(folder) for role, folder in folders.items()}
    decoding = (
        {
            "step_tokens": config.decode.step_tokens,
            "max_steps": config.decode.max_steps,
            "oracle": config.oracle,
            **({"stop_on_repeat": True} if config.decode.stop_on_repeat else {}),  # older prediction files still resume
            **({"retry_repeats": config.decode.retry_repeats} if config.decode.retry_repeats else {}),
        }
        if method.iterative
        else {"max_new_tokens": config.decode.max_new_tokens}
    )
    runtime = config.runtime
    return {
        "method": method.name,
        "students": {role: [i.base_model, i.data_hash, i.trained_for] for role, i in infos.items()},
        **config.data.settings(task, split),
        "sampling": dataclasses.asdict(config.sampling),
        **({"qg_sampling": dataclasses.asdict(config.qg_sampling)} if config.qg_sampling else {}),  # older files resume
        "samples": config.samples,
        "calculator": config.decode.calculator,
        "engine": [runtime.engine, runtime.dtype if runtime.engine == "hf" else runtime.gguf_type],
        **decoding,
        **({"context": runtime.context} if runtime.context else {}),  # a budget too; older files still resume
    }


def _solve_in_chunks(
    problems: Sequence[Problem],
    engine: Engine,
    config: SolveConfig,
    task: Task,
    save: Callable[[Prediction], None],
    progress: Callable[[int], None],
) -> None:
    """One-pass methods: `--chunk` problems (every sample of each) per engine call, saved after each call."""
    k = config.samples
    for start in range(0, len(problems), config.chunk):
        chunk = problems[start : start + config.chunk]
        chunk_started = time.time()
        questions = [p.question for p in chunk for _ in range(k)]
        flat = solve_one_pass(engine, questions, config.decoding, progress)
        seconds = (time.time() - chunk_started) / len(chunk)
        for n, problem in enumerate(chunk):
            save(to_prediction(problem, flat[n * k : (n + 1) * k], config.method, task, seconds))


def _solve_rolling(
    problems: Sequence[Problem],
    qg: Engine | None,
    qa: Engine,
    config: SolveConfig,
    task: Task,
    save: Callable[[Prediction], None],
    progress: Callable[[int], None],
) -> None:
    """Iterative: `--batch-size` attempts active at once; a problem is saved as soon as its k attempts end."""
    k = config.samples
    questions = [p.question for p in problems for _ in range(k)]
    oracle = [[s.question for s in p.human_steps] for p in problems for _ in range(k)] if config.oracle else None
    ended: dict[int, dict[int, Attempt]] = {}

    def finished(i: int, attempt: Attempt) -> None:
        tries = ended.setdefault(i // k, {})
        tries[i % k] = attempt
        if len(tries) == k:
            del ended[i // k]
            ordered = [tries[j] for j in range(k)]
            save(to_prediction(problems[i // k], ordered, config.method, task, sum(a.seconds for a in ordered)))

    solve_iterative(
        qg, qa, questions, config.decoding, oracle, progress, width=config.runtime.batch_size, on_finished=finished
    )
