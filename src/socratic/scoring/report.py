"""The report folder of `socratic evaluate --report` and `socratic run`: one page a researcher reads.

    socratic evaluate runs/r/students/*/predictions.gsm8k.test.jsonl --report runs/r/report
    python -m webbrowser runs/r/report/report.html

The folder holds `results.md` (the printed tables), `scores.json`, `accuracy.png` (accuracy with 95%
intervals), `loss.png` (the students' training loss, when their folders hold `loss.jsonl`) and
`report.html`. The page needs no network: its CSS and script are inline (`report_page.html`, this
package's one template) and the plots are embedded. At the top: the scores, the plot and the paired
tests. Below: one row per problem and one column per student (✓/✗, answer, why it missed), with
filters (solved by A not by B, failure kind, ran out of steps, repeated a step, students disagree),
a search over the question text, and counts that follow the filters. A click on a row shows every
student's trace side by side, next to the human decomposition (GSM8K's Socratic subquestions,
StrategyQA's decomposition and facts, SVAMP's equation), with each calculator annotation marked
right, wrong or unreadable. The problems travel as one JSON blob and the page draws 50 rows at a
time, so a 1,319-problem, four-student report opens as fast as a small one.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from socratic.core.errors import cannot_write
from socratic.core.jsonl import read_jsonl, write_atomic
from socratic.core.records import Prediction, Problem
from socratic.scoring.evaluate import (
    FAILURES,
    PAPER,
    EvaluateConfig,
    Evaluation,
    Score,
    failure_kind,
    labels_for,
    paper_note,
    ran_out,
    repeats,
    run_evaluate,
)
from socratic.text.calculator import find_annotations

PAGE_TEMPLATE = "report_page.html"
DATA_SLOT = "__REPORT_DATA__"  # where the template takes the JSON blob


def run_report(config: EvaluateConfig) -> Path | None:
    """`socratic evaluate`: score and print; with --report, write the folder. Returns the page's path."""
    evaluation = run_evaluate(config)
    return write_report(Path(config.report), evaluation) if config.report else None


def write_report(folder: Path, evaluation: Evaluation) -> Path:
    """Write the report folder (results.md, scores.json, plots, report.html); returns report.html."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise cannot_write(folder, e) from None
    scores = evaluation.scores
    note = paper_note(scores)
    write_atomic(folder / "results.md", [evaluation.table + (f"\n{note}\n" if note else "")])
    write_atomic(
        folder / "scores.json",
        [
            json.dumps(
                [{**dataclasses.asdict(s), "accuracy": s.accuracy, "interval": s.interval} for s in scores], indent=2
            )
            + "\n"
        ],
    )
    images = {"accuracy": _data_uri(plot_accuracy(scores, folder / "accuracy.png")), "loss": None}
    curves = loss_curves(evaluation.paths)
    if curves:
        images["loss"] = _data_uri(plot_losses(curves, folder / "loss.png"))
    page = folder / "report.html"
    write_atomic(page, [render_page(page_data(evaluation, images))])
    return page


# --- the data the page shows -------------------------------------------------------------------------


def page_data(evaluation: Evaluation, images: dict[str, str | None]) -> dict[str, Any]:
    """Everything the page shows, as one JSON-able dict: scores, tests, images, problems x students."""
    scores = evaluation.scores
    order = problem_order(evaluation.runs, evaluation.problems)
    by_student = [{p.problem_id: p for p in run} for run in evaluation.runs]
    gold = {p.problem_id: p.meta.get("gold") for run in evaluation.runs for p in run}
    return {
        "title": ", ".join(sorted({s.dataset for s in scores})),
        "note": paper_note(scores),
        "failures": list(FAILURES),
        "students": [_student(s) for s in scores],
        "pairs": [{**dataclasses.asdict(p), "p_value": p.p_value} for p in evaluation.pairs],
        "images": images,
        "problems": [_problem(i, evaluation.problems.get(i), gold.get(i)) for i in order],
        "cells": [[_cell(run[i]) if i in run else None for run in by_student] for i in order],
    }


def problem_order(runs: Sequence[Sequence[Prediction]], problems: dict[str, Problem]) -> list[str]:
    """Every predicted problem once, in the dataset's order (the iterative loop saves problems as they
    end, so a file's order is not the dataset's); problems without a benchmark keep the first file's order."""
    place = {problem_id: n for n, problem_id in enumerate(problems)}
    seen = dict.fromkeys(p.problem_id for run in runs for p in run)
    return sorted(seen, key=lambda i: place.get(i, len(place)))


def _student(score: Score) -> dict[str, Any]:
    return {
        **dataclasses.asdict(score),
        "accuracy": score.accuracy,
        "interval": score.interval,
        "paper": PAPER.get((score.dataset.split("/")[0], score.method)),
    }


def _problem(problem_id: str, problem: Problem | None, gold: str | None) -> dict[str, Any]:
    """A row's problem: its text, gold answer and the human decomposition where the dataset has one."""
    if problem is None:  # a user's file: the predictions know only the id and the gold answer
        return {"id": problem_id, "question": "", "gold": gold, "human": [], "decomposition": [], "facts": []}
    return {
        "id": problem_id,
        "question": problem.question,
        "gold": problem.answer,
        "human": [[step.question, step.answer] for step in problem.human_steps],
        "decomposition": list(problem.decomposition),
        "facts": list(problem.facts),
        "equation": problem.equation,
    }


def _cell(prediction: Prediction) -> dict[str, Any]:
    """One student on one problem. The raw output is kept only when there are no steps to show (it
    repeats them otherwise, and would double the page)."""
    meta = prediction.meta
    return {
        "ok": bool(prediction.correct),
        "answer": prediction.answer,
        "kind": failure_kind(prediction),
        "finish": meta.get("finish", "?"),
        "tokens": meta.get("tokens", 0),
        "calculator": meta.get("calculator", 0),
        "ran_out": ran_out(prediction),
        "repeated": repeats(prediction),
        "steps": [[step.question, step.answer, calculator_marks(step.answer)] for step in prediction.steps],
        "output": None if prediction.steps else prediction.output,
        "output_marks": None if prediction.steps else calculator_marks(prediction.output),
    }


def calculator_marks(text: str) -> list[list[str]] | None:
    """How the calculator judges each `<<expression=value>>` of a text, in order: ["right"], ["wrong",
    true value] (the student's own arithmetic: with the calculator on during solving it would have
    written the true value), or ["unread", why] (not arithmetic it reads, so the value is the
    student's). None when the text has no annotation."""
    marks = []
    for annotation in find_annotations(text):
        if annotation.value is None:
            marks.append(["unread", annotation.error or "not arithmetic"])
        elif annotation.correct:
            marks.append(["right"])
        else:
            marks.append(["wrong", annotation.value])
    return marks or None


# --- plots -----------------------------------------------------------------------------------------


def loss_curves(paths: Sequence[Path]) -> dict[str, list[tuple[int, float]]]:
    """The training loss of each student whose folder holds `loss.jsonl` (written by `socratic train`):
    the predictions file's folder, or its qg/ and qa/ subfolders for an iterative pair. One curve per
    student, however many of the files it solved (a pair's files with two loop rules, or --oracle)."""
    folders = list(dict.fromkeys(path.parent for path in paths))
    names = labels_for([folder / "predictions.jsonl" for folder in folders])  # the student folders' labels
    curves = {}
    for folder, label in zip(folders, names, strict=True):
        for name, loss_file in [(label, folder / "loss.jsonl")] + [
            (f"{label}/{role}", folder / role / "loss.jsonl") for role in ("qg", "qa")
        ]:
            if loss_file.is_file():
                rows = [row for row in read_jsonl(loss_file) if "loss" in row and "step" in row]
                if rows:
                    curves[name] = [(int(row["step"]), float(row["loss"])) for row in rows]
    return curves


def plot_accuracy(scores: Sequence[Score], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [bar_label(s) for s in scores]
    values = [100 * s.accuracy for s in scores]
    errors = [
        [100 * (s.accuracy - s.interval[0]) for s in scores],
        [100 * (s.interval[1] - s.accuracy) for s in scores],
    ]
    figure, axes = plt.subplots(figsize=(max(4.0, 1.3 * len(scores) + 1), 3.6))
    bars = axes.bar(labels, values, yerr=errors, capsize=4, color="#4C72B0")
    for bar, value in zip(bars, values, strict=True):
        axes.annotate(
            f"{value:.1f}",
            (bar.get_x() + bar.get_width() / 2, value),
            ha="left",  # beside the error bar, which would cross a centred label
            va="bottom",
            xytext=(3, 1),
            textcoords="offset points",
            fontsize=8,
        )
    axes.set_ylabel("accuracy (%), 95% CI")
    axes.set_title(", ".join(sorted({s.dataset for s in scores})))
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out


def bar_label(score: Score) -> str:
    """A bar's label: the student and, when the label does not say it, the method, one line per part of
    a long label, so that neighbours' labels do not run into each other."""
    label = score.label.replace("/", "/\n") if len(score.label) > 14 else score.label
    return label if score.label == score.method else f"{label}\n{score.method}"


def plot_losses(curves: dict[str, list[tuple[int, float]]], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.0, 3.4))
    for name, points in curves.items():
        # Markers: a short CPU run logs a handful of points (or one), which a bare line would hide.
        axes.plot(
            [step for step, _ in points], [loss for _, loss in points], "o-", label=name, linewidth=1.2, markersize=3
        )
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("training loss")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def _data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


# --- the page ----------------------------------------------------------------------------------------


def render_page(data: dict[str, Any]) -> str:
    """The template with the data in its JSON slot. "<" is escaped so that no text of a problem or a
    trace (a "</script>" in a model's output) can end the script element early."""
    template = resources.files("socratic.scoring").joinpath(PAGE_TEMPLATE).read_text(encoding="utf-8")
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    return template.replace(DATA_SLOT, blob, 1)
