"""Model cards: the README.md of every student folder and every export, with the Hugging Face hub's
card metadata as YAML front matter, so a folder uploaded to the hub (or read by any tool that reads
cards) says what it is.

    python -c "from socratic.scoring import cards; cards.write_student_card('runs/gsm8k/unified')"

The front matter (written by huggingface_hub's own `ModelCardData`): `base_model` and `license` from
the package's model catalogue (or the hub id the student was trained from), `datasets` from the
benchmarks its chains came from, `tags`, and a `model-index` results block holding the accuracy of
each predictions file found with the student (`socratic solve` writes them into the student's
folder; the pair's folder for QG and QA), so `socratic evaluate` refreshes it. The body says what the
student writes and how to run it: `socratic ask` / `serve` / `export`, Ollama, llama.cpp, Python.
A README.md that socratic did not write is never replaced.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from socratic.core.errors import SocraticError
from socratic.core.jsonl import write_atomic
from socratic.scoring.evaluate import read_predictions, score
from socratic.tasks import BENCHMARKS
from socratic.text.methods import role_folder, roles_to_train
from socratic.weights import models, student_folder

log = logging.getLogger(__name__)

CARD = "README.md"
MARK = "<!-- written by socratic: rewritten when the student is trained, evaluated or exported -->"
TAGS = ("socratic", "socratic-cot", "distillation", "reasoning")
PROJECT = "socratic (Socratic CoT: Shridhar et al. 2023, https://arxiv.org/abs/2212.00193)"

WRITES = {
    "answer": "the answer line alone (`Answer: <answer>`)",
    "cot": "its solution, one step per line, then `Answer: <answer>`",
    "unified": "subquestion/solution pairs (`Q: ...` / `A: ...` lines), then `Answer: <answer>`",
    "qg": "the next subquestion (`Q: ...`), or `[END]` when none is left: the question generator of a pair",
    "qa": "the solution of the last subquestion (`A: ...`): the question answerer of a pair",
    "iterative": "subquestion/solution pairs, one line at a time, QG asking and QA answering",
}


@dataclass(frozen=True)
class Result:
    """One evaluation of the student: a predictions file's accuracy on a benchmark split."""

    dataset: str  # a socratic task name: gsm8k
    split: str
    method: str
    correct: int
    total: int

    @property
    def percent(self) -> float:
        return round(100 * self.correct / self.total, 2) if self.total else 0.0


@dataclass(frozen=True)
class Facts:
    """What a card says of a student: gathered from its folder by `student_facts`."""

    name: str
    role: str  # a role, or "iterative" for a pair's folder
    base_model: str
    datasets: tuple[str, ...]  # socratic task names (or the user's file)
    chains: int | None
    results: tuple[Result, ...]


def card_text(facts: Facts, usage: str) -> str:
    """The whole README.md: front matter, what the student is, its results, `usage` (markdown)."""
    from huggingface_hub import EvalResult, ModelCardData

    spec = models.MODELS.get(facts.base_model)
    base = spec.hub_id if spec else (facts.base_model if _hub_id(facts.base_model) else None)
    hub_datasets = [BENCHMARKS[d].hub_id for d in facts.datasets if d in BENCHMARKS and BENCHMARKS[d].hub_id]
    evals = [
        EvalResult(
            task_type="text-generation",
            dataset_type=BENCHMARKS[r.dataset].hub_id or r.dataset,
            dataset_name=r.dataset,
            dataset_split=r.split,
            metric_type="accuracy",
            metric_value=r.percent,
            metric_name=f"accuracy (%), {r.method}, greedy",
        )
        for r in facts.results
        if r.dataset in BENCHMARKS
    ]
    data = ModelCardData(
        base_model=base,
        datasets=hub_datasets or None,
        license=spec.licence_id if spec else None,
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=[*TAGS, facts.role],
        model_name=facts.name if evals else None,
        eval_results=evals or None,
    )
    trained = f" on {facts.chains:,} chains" if facts.chains else ""
    source = f" of {', '.join(facts.datasets)}" if facts.datasets else ""
    lines = [
        "---",
        data.to_yaml(),
        "---",
        MARK,
        "",
        f"# {facts.name}",
        "",
        f"A `{facts.role}` student distilled by {PROJECT} from `{facts.base_model}`{trained}{source}.",
        f"Given `Problem: <the problem>` and a newline, it writes {WRITES.get(facts.role, 'its completion')}.",
        "",
        "## Results",
        "",
        *results_table(facts.results),
        "",
        "## Usage",
        "",
        usage.strip(),
        "",
    ]
    return "\n".join(lines)


def results_table(results: Sequence[Result]) -> list[str]:
    if not results:
        return ["Not evaluated yet: `socratic solve` then `socratic evaluate` fill this in."]
    rows = ["| dataset | split | method | accuracy | correct / problems |", "| --- | --- | --- | --- | --- |"]
    rows += [f"| {r.dataset} | {r.split} | {r.method} | {r.percent:.1f} % | {r.correct} / {r.total} |" for r in results]
    return [*rows, "", "Greedy decoding with the calculator, as `socratic solve` runs by default."]


def student_usage(folder: Path, role: str) -> str:
    """How to run a student folder (a pair's folder for `iterative`; QG and QA run as their pair)."""
    if role in ("qg", "qa"):
        return (
            f"One half of an iterative pair: run the folder holding `qg/` and `qa/` "
            f'(`socratic ask --model {folder.parent} "..."`), whose README says more.'
        )
    return f"""```
socratic ask --model {folder} "Tom has 3 boxes of 12 eggs and breaks 5. How many eggs are left?"
socratic serve --model {folder}            # OpenAI-compatible: http://127.0.0.1:8000/v1
socratic export --model {folder} --out {folder}/export   # GGUF + Modelfile for llama.cpp, Ollama, LM Studio
```

From Python: `socratic.Student.load("{folder}").solve(["..."])`. After `socratic export`, Ollama runs it
with `ollama create {folder.name} -f {folder}/export/Modelfile` and llama.cpp with
`llama-server -m {folder}/export/<the .gguf file>`; the export's README says how."""


def student_facts(folder: Path) -> Facts:
    """The facts of a student folder (or a pair's folder holding `qg/` and `qa/`)."""
    pair = not student_folder.info_path(folder).exists() and student_folder.info_path(folder / "qg").exists()
    info = student_folder.read_info(folder / "qg" if pair else folder)
    manifest = _manifest(folder / "qg" if pair else folder)
    evaluated = folder if pair or info.role not in ("qg", "qa") else folder.parent
    return Facts(
        name=folder.resolve().name,
        role="iterative" if pair else info.role,
        base_model=info.base_model,
        datasets=_datasets(manifest),
        chains=info.examples,
        results=tuple(results_in(evaluated)),
    )


def results_in(folder: Path) -> list[Result]:
    """The accuracy of each predictions file of a benchmark in `folder` (sampled and oracle runs too)."""
    found = []
    for path in sorted(folder.glob("predictions.*.jsonl")):
        try:
            predictions = read_predictions(path)
            scored = score(path, folder.name, predictions)
        except SocraticError as e:  # half written or mixed: the card leaves it out, evaluate says why
            log.warning("%s: not on the model card: %s", path, e)
            continue
        dataset, _, split = scored.dataset.partition("/")
        if dataset in BENCHMARKS and "," not in scored.dataset:
            found.append(Result(dataset, split, scored.method, scored.correct, scored.total))
    return found


def write_student_card(folder: str | Path) -> Path | None:
    """Write (or rewrite) the card of a trained student folder, or of a pair's folder; a README.md
    that socratic did not write is kept. Returns the card's path, or None when kept."""
    folder = Path(folder)
    target = folder / CARD
    if target.exists() and MARK not in target.read_text(encoding="utf-8", errors="replace"):
        log.info("%s: not written by socratic, kept as it is (no model card written)", target)
        return None
    facts = student_facts(folder)
    usage = student_usage(folder, facts.role)
    return write_atomic(target, [card_text(facts, usage)])


def refresh_card_of(folder: Path) -> None:
    """After an evaluation: the card of the student in `folder` (predictions sit in the student's
    folder, or in the folder holding a pair), and of a pair's halves, if they are students."""
    pair = [folder / "qg", folder / "qa"]
    students = [folder] if student_folder.info_path(folder).exists() else []
    if all(student_folder.info_path(half).exists() for half in pair):
        students = [folder, *pair]
    for student in students:
        write_student_card(student)


def _manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}


def _datasets(manifest: dict) -> tuple[str, ...]:
    """The benchmarks a student's chains came from: the chain ids' first part (`gsm8k/train/17`), or the
    training run's --dataset when it named the user's own file."""
    config = manifest.get("config") or {}
    dataset = (config.get("data") or {}).get("dataset")
    if dataset and dataset not in BENCHMARKS:
        return (Path(str(dataset)).name,)
    chains = Path(str(config.get("chains", "")))
    names: set[str] = set()
    if chains.is_file():
        with chains.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                try:
                    names.add(str(json.loads(line).get("problem_id", "")).split("/", 1)[0])
                except (json.JSONDecodeError, AttributeError):
                    continue
    return tuple(sorted(name for name in names if name in BENCHMARKS)) or ((dataset,) if dataset else ())


def _hub_id(name: str) -> bool:
    """Whether a base model's name is a hub id (`org/name`), not a folder on this machine."""
    return name.count("/") == 1 and not Path(name).exists() and not name.startswith((".", "/"))


def after_training(out: str | Path, method: str) -> None:
    """The cards of what `train --method method --out out` wrote: each role's folder, and for a pair
    the folder holding qg/ and qa/."""
    roles = roles_to_train(method)
    for role in roles:
        write_student_card(role_folder(out, method, role))
    if len(roles) > 1:
        write_student_card(out)


def after_evaluation(predictions: Sequence[Path]) -> None:
    """The cards of the students whose predictions files were just scored, with the new results."""
    for folder in dict.fromkeys(Path(p).parent for p in predictions):
        refresh_card_of(folder)
