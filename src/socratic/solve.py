"""Stage 3: trained students solve a dataset split; every attempt is saved as a `Prediction`.

    socratic solve --mode unified --model runs/u --dataset gsm8k --limit 200
    socratic solve --mode iterative --qg runs/it/qg --qa runs/it/qa --dataset gsm8k
    socratic solve --mode iterative --qa runs/it/qa --oracle          # human subquestions ("with guidance")
    socratic solve --mode unified --model runs/u --samples 5 --temperature 0.7   # self-consistency
    socratic solve --mode iterative --qg runs/it/qg --qa runs/it/qa --adapters    # LoRA pair, one base model

One-pass students (`answer`, `cot`, `unified`) write their whole completion in one generation. The
iterative pair works in sync over many problems at once: every active problem asks QG for its next
subquestion in one batch, then QA answers all of them in one batch; a problem leaves the active set
when QG writes the end marker or after `--max-steps` pairs, and the next waiting problem takes its
place (at most `--batch-size` are active), so one problem ending early never holds up the others.
The answer is read from the answer line (one-pass) or the last solution (iterative, as in the
paper). With `--samples k`, k attempts are sampled per problem and the most frequent answer wins
(self-consistency).

The calculator writes the true value of every `<<expr=` annotation while decoding (`--no-calculator`
to measure what it adds). Predictions are appended to the output file as they are made (one-pass:
chunk by chunk; iterative: each problem when it ends); rerunning the same command continues with the
problems not saved yet.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from socratic import students
from socratic.engines import ENGINES, GREEDY, Engine, Sampling
from socratic.errors import SocraticError
from socratic.gguf_io import GGUF_TYPES
from socratic.loops import Attempt, solve_iterative, solve_one_pass
from socratic.manifest import git_commit, write_manifest
from socratic.records import JsonlAppender, Prediction, Problem, read_jsonl
from socratic.tasks import FileFields, load_task
from socratic.tasks.base import Task

log = logging.getLogger(__name__)

METHODS = ("answer", "cot", "unified", "iterative")


@dataclass(frozen=True)
class SolveConfig:
    mode: str = field(
        default="unified",
        metadata={
            "help": "answer, cot, unified (one student: --model) or iterative (--qg and --qa)",
            "choices": METHODS,
        },
    )
    model: str | None = field(default=None, metadata={"help": "student folder from `socratic train` (one-pass modes)"})
    qg: str | None = field(default=None, metadata={"help": "question-generator student folder (iterative)"})
    qa: str | None = field(default=None, metadata={"help": "question-answerer student folder (iterative)"})
    dataset: str = field(default="gsm8k", metadata={"help": "gsm8k, svamp, strategyqa, or a .jsonl/.json/.csv file"})
    split: str | None = field(default=None, metadata={"help": "split to solve (default: test)"})
    limit: int | None = field(default=None, metadata={"help": "solve the first N problems only"})
    out: str | None = field(
        default=None, metadata={"help": "predictions file (default: <student>/predictions.<dataset>.<split>.jsonl)"}
    )
    engine: str = field(
        default="hf",
        metadata={
            "help": "hf: batched transformers decoding (any model); llamacpp: the student exported "
            "to GGUF (once) and decoded by llama.cpp with continuous batching (fastest on CPUs); vllm: "
            "vLLM on a GPU (extra socratic[vllm]; not tested here)",
            "choices": ENGINES,
        },
    )
    batch_size: int = field(default=32, metadata={"help": "sequences decoded together"})
    dtype: str = field(
        default="float32",
        metadata={
            "help": "weights of the hf engine: float32 (reference outputs) or bfloat16 (faster on GPUs and on "
            "CPUs with AMX; greedy outputs differ at near-ties)",
            "choices": ("float32", "bfloat16"),
        },
    )
    gguf_type: str = field(
        default="f32",
        metadata={
            "help": "weights of the GGUF exported for the llamacpp engine: f32 (outputs closest to transformers), "
            "bf16 or q8_0 (smaller and faster, outputs differ slightly)",
            "choices": GGUF_TYPES,
        },
    )
    lookup: int = field(
        default=10,
        metadata={
            "help": "llamacpp engine, greedy decoding: once few sequences are left, check up to N tokens copied "
            "from the prompt or earlier output (prompt lookup) in one llama.cpp call; the same text in fewer "
            "calls; 0 = off"
        },
    )
    max_new_tokens: int = field(default=256, metadata={"help": "token budget of one-pass completions"})
    step_tokens: int = field(default=96, metadata={"help": "token budget of one QG or QA line (iterative)"})
    max_steps: int = field(default=10, metadata={"help": "most subquestion/solution pairs per problem (iterative)"})
    calculator: bool = field(
        default=True, metadata={"help": "write the calculator's value into <<expr=...>> annotations"}
    )
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
        default=1, metadata={"help": "attempts per problem; >1 votes on the answer (self-consistency)"}
    )
    temperature: float = field(
        default=0.0, metadata={"help": "0 = greedy; >0 samples (default 0.7 when --samples > 1)"}
    )
    chunk: int = field(
        default=64,
        metadata={
            "help": "one-pass modes: problems solved and saved together (resume granularity); the iterative "
            "loop keeps --batch-size problems active and saves each one as it finishes"
        },
    )
    threads: int | None = field(default=None, metadata={"help": "CPU threads (default: all cores)"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})

    @property
    def sampling(self) -> Sampling:
        temperature = self.temperature or (0.7 if self.samples > 1 else 0.0)
        return Sampling(temperature, self.seed) if temperature > 0 else GREEDY


# --- from attempts to predictions ------------------------------------------------------------------


def to_prediction(problem: Problem, attempts: Sequence[Attempt], method: str, task: Task, seconds: float) -> Prediction:
    """The prediction of one problem: its (first) attempt's trace and the majority answer of all attempts."""
    answers = [task.extract_answer(a.answer_text) for a in attempts]
    votes = Counter(a for a in answers if a is not None)
    answer = votes.most_common(1)[0][0] if votes else None
    chosen = attempts[answers.index(answer)] if answer is not None else attempts[0]
    meta = {
        "finish": chosen.finish,
        "tokens": sum(a.tokens for a in attempts),
        "calculator": sum(a.calculator for a in attempts),
        "seconds": round(seconds, 3),
        "gold": problem.answer,
    }
    if len(attempts) > 1:
        meta["votes"] = dict(votes)
        meta["answers"] = answers
    return Prediction(
        problem.id, method, chosen.steps, chosen.output, answer, task.is_correct(answer, problem.answer), meta
    )


# --- the command -----------------------------------------------------------------------------------------


def default_output(config: SolveConfig, split: str) -> Path:
    student = config.model if config.mode != "iterative" else str(Path(config.qa or ".").parent)
    name = Path(config.dataset).stem if "." in config.dataset else config.dataset
    suffix = ".oracle" if config.oracle else ""
    return Path(student) / f"predictions.{name}.{split}{suffix}.jsonl"


def run_solve(config: SolveConfig, fields: FileFields | None = None) -> Path:
    from tqdm import tqdm

    started, commit = time.time(), git_commit()
    students.check_roles(config)
    if config.oracle and config.mode != "iterative":
        raise SocraticError("--oracle feeds human subquestions to a QA student: use it with --mode iterative")
    task = load_task(config.dataset, fields)
    split = config.split or task.default_split
    problems = task.load(split, config.limit)
    if config.oracle and not all(p.human_steps for p in problems):
        raise SocraticError(
            f"--oracle needs human subquestions, which {task.name}/{split} does not have for every problem"
        )
    out = Path(config.out) if config.out else default_output(config, split)
    done = already_solved(out, config.mode)
    todo = [p for p in problems if p.id not in done]
    if done:
        log.warning("%s: %d problems already solved, %d to go", out, len(problems) - len(todo), len(todo))
    qg, qa = students.open_engines(config) if todo else (None, None)
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        JsonlAppender(out) as sink,
        tqdm(total=len(todo) * config.samples, desc=f"solve {config.mode}", unit="attempt") as bar,
    ):
        if config.mode == "iterative":
            _solve_rolling(todo, qg, qa, config, task, sink.append, bar.update)  # type: ignore[arg-type]
        else:
            _solve_in_chunks(todo, qa, config, task, sink.append, bar.update)  # type: ignore[arg-type]
    predictions = list(read_jsonl(out, Prediction))
    correct = sum(bool(p.correct) for p in predictions)
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
    log.warning(
        "%s: %d / %d correct (%.1f %%)", out, correct, len(predictions), 100 * correct / max(len(predictions), 1)
    )
    return out


def _solve_in_chunks(
    problems: Sequence[Problem],
    engine: Engine,
    config: SolveConfig,
    task: Task,
    save: Callable[[Prediction], None],
    progress: Callable[[int], None],
) -> None:
    """One-pass modes: `--chunk` problems (every sample of each) per engine call, saved after each call."""
    k = config.samples
    for start in range(0, len(problems), config.chunk):
        chunk = problems[start : start + config.chunk]
        chunk_started = time.time()
        flat = solve_one_pass(engine, config.mode, [p.question for p in chunk for _ in range(k)], config, progress)
        seconds = (time.time() - chunk_started) / len(chunk)
        for n, problem in enumerate(chunk):
            save(to_prediction(problem, flat[n * k : (n + 1) * k], config.mode, task, seconds))


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
            save(to_prediction(problems[i // k], ordered, "iterative", task, sum(a.seconds for a in ordered)))

    solve_iterative(qg, qa, questions, config, oracle, progress, width=config.batch_size, on_finished=finished)


def already_solved(out: Path, method: str) -> set[str]:
    """The problems `out` already holds predictions for (an error if they are another method's)."""
    if not out.exists():
        return set()
    found = list(read_jsonl(out, Prediction))
    others = {p.method for p in found} - {method}
    if others:
        raise SocraticError(
            f"{out} holds predictions of another method ({', '.join(sorted(others))}): choose another --out"
        )
    return {p.problem_id for p in found}
