"""Score prediction files: accuracy with 95% confidence intervals, why the misses missed, paired tests.

    socratic evaluate runs/u/predictions.gsm8k.test.jsonl
    socratic evaluate runs/*/predictions.gsm8k.test.jsonl --report runs/report

Each file is one student (or student pair) on one dataset split. Accuracy comes with a 95% Wilson
score interval, which stays honest for the small accuracies and slices of CPU-scale runs. Every
miss is put in one bucket, in this order: no answer could be read; the model ran out of tokens or
steps; the chain holds an arithmetic annotation that the calculator shows to be wrong; or the
reasoning was wrong. Several files print one side-by-side table, with the paper's figures for the
same dataset and method where the paper has them, and an exact McNemar test for every pair of files
on the same problems. `--report DIR` also writes the report folder (see `socratic.scoring.report`):
results.md, scores.json, a plot and report.html, one page with every problem's traces side by side,
filters and the human decomposition.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from socratic.core.errors import SocraticError
from socratic.core.jsonl import read_jsonl
from socratic.core.records import Prediction, Problem
from socratic.core.resume import recorded_settings
from socratic.text.calculator import find_annotations

FAILURES = ("no answer", "out of budget", "arithmetic", "wrong reasoning")

# The paper's GSM8K figures for GPT-2 Large (774M), as quoted in docs: CoT on human chains and the
# best Socratic CoT variant. Shown next to ours for reference; they are not measured here.
PAPER = {
    ("gsm8k", "cot"): 14.1,
    ("gsm8k", "unified"): 21.1,
    ("gsm8k", "iterative"): 21.1,
}

# One line of reference figures per dataset, printed under a table only for the datasets it shows.
PAPER_NOTES = {
    "gsm8k": "paper: GPT-2 Large (774M), CoT 14.1 %, Socratic CoT 21.1 % (best variant)",
    "svamp": "reference: GPT-2 Large (774M), Fine-tune-CoT 6.0–10.3 % (Ho et al. 2023)",
    "strategyqa": "reference: GPT-2 Large (774M), Fine-tune-CoT 53.9–55.5 % (Ho et al. 2023)",
}


@dataclass(frozen=True)
class EvaluateConfig:
    predictions: list[str] = field(
        default_factory=list, metadata={"help": "prediction files from `socratic solve`", "positional": True}
    )
    report: str | None = field(
        default=None, metadata={"help": "write the report folder here: results.md, scores.json, plots, report.html"}
    )


@dataclass(frozen=True)
class Score:
    label: str  # the student, from the file's location
    dataset: str  # e.g. gsm8k/test
    method: str
    total: int
    correct: int
    failures: dict[str, int]
    shape: Shape | None = None  # how long the decompositions were, and whether they looped

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.total)


@dataclass(frozen=True)
class Shape:
    """How a student decomposed its problems: the iterative pair's health at a glance (does QG stop?)."""

    steps: float  # mean steps (subquestion/solution pairs, or CoT lines) per problem
    ran_out: int  # problems cut off: all --max-steps pairs, the token budget, or the context
    repeated: int  # problems in which a step repeats an earlier one (a greedy student in a loop)
    stopped_on_repeat: int  # iterative problems ended by --stop-on-repeat
    retried: int  # iterative problems whose QG was asked again after repeating itself (--retry-repeats)
    human_steps: float | None  # mean steps of the human decompositions of the same problems (GSM8K, StrategyQA)


RAN_OUT = ("max_steps", "length", "too long")


def repeats(prediction: Prediction) -> bool:
    """Whether a step repeats an earlier one (same subquestion, or same line of a CoT)."""
    from socratic.text.formats import step_key

    keys = [step_key(step) for step in prediction.steps]
    return len(set(keys)) < len(keys)


def ran_out(prediction: Prediction) -> bool:
    """Cut off: all --max-steps pairs used, the token budget spent, or the problem too long for the context."""
    return prediction.meta.get("finish") in RAN_OUT


def shape_of(predictions: Sequence[Prediction], human: dict[str, int]) -> Shape:
    """The `Shape` of one file; `human` maps problem ids to their human decomposition's step count."""
    counts = [human[p.problem_id] for p in predictions if p.problem_id in human]
    return Shape(
        steps=sum(len(p.steps) for p in predictions) / len(predictions),
        ran_out=sum(ran_out(p) for p in predictions),
        repeated=sum(repeats(p) for p in predictions),
        stopped_on_repeat=sum(p.meta.get("finish") == "repeat" for p in predictions),
        retried=sum(bool(p.meta.get("retried")) for p in predictions),
        human_steps=sum(counts) / len(counts) if counts and len(counts) == len(predictions) else None,
    )


def wilson_interval(successes: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (better than the normal one near 0 and 1)."""
    if total == 0:
        return 0.0, 1.0
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Paired:
    """Two students on the same problems: how many each solved that the other did not."""

    first: str
    second: str
    shared: int  # problems both files answer
    only_first: int
    only_second: int

    @property
    def p_value(self) -> float:
        return mcnemar_exact(self.only_first, self.only_second)


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar test: under "equally good", each discordant problem is a fair coin.

    The right test for two students on the same problems: their accuracies are paired, so the two
    Wilson intervals overlapping does not mean that the difference is noise, nor the reverse.
    """
    n, k = only_first + only_second, min(only_first, only_second)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def paired_comparisons(labels: Sequence[str], runs: Sequence[Sequence[Prediction]]) -> list[Paired]:
    """Every pair of files that answer the same problems (later files against earlier ones)."""
    solved = [{p.problem_id: bool(p.correct) for p in run} for run in runs]
    pairs = []
    for j in range(len(runs)):
        for i in range(j):
            shared = solved[i].keys() & solved[j].keys()
            if shared and len(shared) == len(solved[i]) == len(solved[j]):
                only_j = sum(solved[j][k] and not solved[i][k] for k in shared)
                only_i = sum(solved[i][k] and not solved[j][k] for k in shared)
                pairs.append(Paired(labels[j], labels[i], len(shared), only_j, only_i))
    return pairs


def paired_table(pairs: Sequence[Paired]) -> str:
    if not pairs:
        return ""
    rows = [
        "| student | against | problems | solved only by student | solved only by the other | exact McNemar p |",
        "|---|---|---|---|---|---|",
    ]
    for pair in pairs:
        rows.append(
            f"| {pair.first} | {pair.second} | {pair.shared:,} | {pair.only_first:,} | {pair.only_second:,} | "
            f"{pair.p_value:.3g} |"
        )
    return "\n".join(rows) + "\n"


# How the plain verdict names each method, and the level below which a paired difference counts as real.
METHOD_NAMES = {
    "answer": "answer-only",
    "cot": "CoT",
    "unified": "Socratic (unified)",
    "iterative": "Socratic (iterative)",
}
SIGNIFICANCE = 0.05


def verdict(scores: Sequence[Score], pairs: Sequence[Paired]) -> list[str]:
    """The run's result in plain words, one line per baseline: the better Socratic student against CoT
    and against answer-only, e.g. "Socratic (iterative) 31.0 % vs CoT 17.3 %: better, p = 0.0004 on
    300 paired problems". Empty unless the scores are one run's students (each method once)."""
    by_method = {s.method: s for s in scores}
    socratic = [by_method[m] for m in ("unified", "iterative") if m in by_method]
    if len(by_method) != len(scores) or not socratic:
        return []
    best = max(socratic, key=lambda s: s.accuracy)  # the first on a tie
    lines = []
    for baseline in ("cot", "answer"):
        other = by_method.get(baseline)
        pair = next((p for p in pairs if other and {p.first, p.second} == {best.label, other.label}), None)
        if other is None or pair is None:
            continue
        lines.append(
            f"{METHOD_NAMES[best.method]} {100 * best.accuracy:.1f} % vs {METHOD_NAMES[baseline]} "
            f"{100 * other.accuracy:.1f} %: {_compared(best.accuracy - other.accuracy, pair.p_value)}, "
            f"p = {pair.p_value:.2g} on {pair.shared:,} paired problems"
        )
    return lines


def _compared(difference: float, p_value: float) -> str:
    if p_value >= SIGNIFICANCE or difference == 0:
        return "no difference beyond chance"
    return "better" if difference > 0 else "worse"


def failure_kind(prediction: Prediction) -> str | None:
    """Why a prediction missed (one of FAILURES), or None if it is correct."""
    if prediction.correct:
        return None
    if prediction.meta.get("finish") == "too long":  # the problem did not fit the engine's context
        return "out of budget"
    if prediction.answer is None:
        return "no answer"
    if prediction.meta.get("finish") in ("length", "max_steps"):
        return "out of budget"
    text = "\n".join(step.answer for step in prediction.steps) or prediction.output
    if any(annotation.correct is False for annotation in find_annotations(text)):
        return "arithmetic"
    return "wrong reasoning"


def label_for(path: Path) -> str:
    """A short name for a predictions file: its student folder (`runs/u/predictions.gsm8k.test.jsonl` -> `u`),
    or the file's own name when it is not called `predictions.*`."""
    return path.parent.name if path.name.startswith("predictions.") else path.stem


def labels_for(paths: Sequence[Path]) -> list[str]:
    """`label_for` of each file, with as many of the folders above it as it takes to tell files apart
    (two runs' unified students: `cpu-svamp/students/unified`, `cpu-svamp-diverse/students/unified`),
    and the file's own name when they share a folder (`val19/b4.plain`, `val19/b4.stop`)."""
    labels = [label_for(path) for path in paths]
    for base in {label for label in labels if labels.count(label) > 1}:
        group = [i for i, label in enumerate(labels) if label == base]
        above = [_folders_above_label(paths[i]) for i in group]
        for depth in range(1, max(len(folders) for folders in above) + 1):
            named = ["/".join((*folders[len(folders) - depth :], base)) for folders in above]
            if len(set(named)) == len(named):
                break
        else:  # one folder: the files' names tell them apart
            named = [f"{base}/{paths[i].stem.removeprefix('predictions.')}" for i in group]
        for i, name in zip(group, named, strict=True):
            labels[i] = name
    return labels


def _folders_above_label(path: Path) -> tuple[str, ...]:
    return path.parent.parent.parts if path.name.startswith("predictions.") else path.parent.parts


def read_predictions(path: Path) -> list[Prediction]:
    """A predictions file, refused if it holds a problem twice: two runs appended to one file, and
    scoring it would count those problems twice."""
    predictions = list(read_jsonl(path, Prediction))
    seen: set[str] = set()
    for prediction in predictions:
        if prediction.problem_id in seen:
            raise SocraticError(
                f"{path}: problem {prediction.problem_id!r} is predicted twice (two runs wrote this file?)"
            )
        seen.add(prediction.problem_id)
    return predictions


def score(path: Path, label: str, predictions: Sequence[Prediction], human: dict[str, int] | None = None) -> Score:
    if not predictions:
        raise SocraticError(f"{path}: no predictions")
    methods = {p.method for p in predictions}
    if len(methods) > 1:
        raise SocraticError(f"{path} mixes methods {sorted(methods)}: one file per student")
    datasets = sorted({"/".join(p.problem_id.split("/")[:2]) for p in predictions})
    failures = Counter(kind for p in predictions if (kind := failure_kind(p)))
    method = methods.pop()
    return Score(
        label,
        ",".join(datasets),
        f"{method} (oracle)" if solved_with_oracle(path) else method,
        len(predictions),
        sum(bool(p.correct) for p in predictions),
        {kind: failures.get(kind, 0) for kind in FAILURES},
        shape_of(predictions, human or {}),
    )


def solved_with_oracle(path: Path) -> bool:
    """Whether `socratic solve --oracle` wrote the file (its settings sidecar says so): QA answered the
    human subquestions, so it is not the pair's score, and the paper's figure for the pair is not its."""
    try:
        settings = recorded_settings(path)
    except (OSError, SocraticError):
        return False  # an unreadable sidecar says nothing either way; scoring does not need it
    return settings is not None and settings.get("oracle") is True  # None: a user's file, or one copied alone


def paper_note(scores: Sequence[Score]) -> str:
    """The reference lines for the benchmarks these scores are on ("" for a user's own data)."""
    names = sorted({d.split("/")[0] for s in scores for d in s.dataset.split(",")})
    return "\n".join(PAPER_NOTES[name] for name in names if name in PAPER_NOTES)


def markdown_table(scores: Sequence[Score]) -> str:
    header = "| student | data | method | n | accuracy | 95% CI | " + " | ".join(FAILURES) + " | paper |"
    rows = [header, "|" + "---|" * (header.count("|") - 1)]
    for s in scores:
        low, high = s.interval
        paper = PAPER.get((s.dataset.split("/")[0], s.method))
        rows.append(
            f"| {s.label} | {s.dataset} | {s.method} | {s.total:,} | {100 * s.accuracy:.1f} % | "
            f"{100 * low:.1f}–{100 * high:.1f} | "
            + " | ".join(f"{s.failures[k]:,}" for k in FAILURES)
            + f" | {f'{paper:.1f} %' if paper is not None else '–'} |"
        )
    return "\n".join(rows) + "\n"


def shape_table(scores: Sequence[Score]) -> str:
    """Steps per problem, cut-offs and loops of the step-by-step students ("" if there are none)."""
    shown = [s for s in scores if s.shape is not None and s.method != "answer"]
    if not shown:
        return ""
    rows = [
        "| student | method | steps per problem | human steps | ran out of steps or tokens | repeated a step |",
        "|---|---|---|---|---|---|",
    ]
    for s in shown:
        shape = s.shape
        assert shape is not None
        human = f"{shape.human_steps:.1f}" if shape.human_steps is not None else "–"
        notes = [f"{shape.stopped_on_repeat:,} stopped there"] if shape.stopped_on_repeat else []
        notes += [f"{shape.retried:,} asked QG again"] if shape.retried else []
        stopped = f" ({'; '.join(notes)})" if notes else ""
        ran_out = f"{shape.ran_out:,} ({_share(shape.ran_out, s.total)})"
        rows.append(
            f"| {s.label} | {s.method} | {shape.steps:.1f} | {human} | {ran_out} "
            f"| {shape.repeated:,} ({_share(shape.repeated, s.total)}){stopped} |"
        )
    return "\n".join(rows) + "\n"


def _share(count: int, total: int) -> str:
    return f"{100 * count / total:.1f} %" if total else "–"


def _problems(runs: Sequence[Sequence[Prediction]]) -> dict[str, Problem]:
    """The predicted problems, loaded from the benchmarks that the ids name (absent for a user's files)."""
    from socratic.tasks import BENCHMARKS, load_task

    wanted = {p.problem_id for run in runs for p in run}
    sources = {(parts[0], parts[1]) for i in wanted if len(parts := i.split("/")) >= 3}
    found: dict[str, Problem] = {}
    for name, split in sources:
        task = load_task(name) if name in BENCHMARKS else None
        if task is not None and split in task.splits:  # ids are the file's to say: a bad one has no text
            found.update((p.id, p) for p in task.load(split) if p.id in wanted)
    return found


@dataclass(frozen=True)
class Evaluation:
    """What `run_evaluate` found: the files, their predictions and problems, the scores and the tables."""

    paths: list[Path]
    runs: list[list[Prediction]]  # one list per file, in the file's order
    problems: dict[str, Problem]  # the benchmark problems the ids name, in the dataset's order
    scores: list[Score]
    pairs: list[Paired]
    table: str  # what was printed: scores, shapes, paired tests (markdown)


def run_evaluate(config: EvaluateConfig) -> Evaluation:
    """Score the files and print the tables (`socratic.scoring.report.run_report` also writes --report)."""
    if not config.predictions:
        raise SocraticError("give one or more prediction files (written by `socratic solve`)")
    paths = [Path(p) for p in config.predictions]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise SocraticError(f"predictions file not found: {missing[0]}")
    runs = [read_predictions(p) for p in paths]
    problems = _problems(runs)
    human = {i: n for i, p in problems.items() if (n := len(p.human_steps) or len(p.decomposition))}
    scores = [
        score(path, label, predictions, human)
        for path, label, predictions in zip(paths, labels_for(paths), runs, strict=True)
    ]
    pairs = paired_comparisons([s.label for s in scores], runs)
    table = markdown_table(scores)
    if shapes := shape_table(scores):
        table += "\n" + shapes
    if pairs:  # same problems in several files: is each difference more than chance?
        table += "\n" + paired_table(pairs)
    note = paper_note(scores)
    print(table + (f"\n{note}" if note else ""))
    return Evaluation(paths, runs, problems, scores, pairs, table)
