"""A run folder, in one place: what `socratic run` writes and `--status` and `--dry-run` read.

    socratic run --config tiny --out runs/t && ls runs/t

    runs/t/
      run.json                 the settings and each stage's time (`pipeline`'s record); run.json.lock beside it
      chains.jsonl             what annotate wrote (a teacher's reply cache beside it), what every student trains on
      students/<method>/       each method's student folder (`weights.student_folder`); a method of two
                               roles has one per role inside: students/iterative/qg, students/iterative/qa
        predictions.<dataset>.<split>.jsonl   the method's answers to the test split
      report/                  results.md, scores.json, plots, report.html: written once every method is solved
      .gitignore               commits the folder without its weights

A student folder owns its own layout; this class names only where the run puts each one. The names
are those of every run folder written so far (results/ holds some), so none is renamed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from socratic.text.methods import METHODS, role_folder
from socratic.weights import student_folder

# Commit a run folder without its weights and checkpoints (kept: what each student folder says about
# itself, its loss curve and its predictions); a later `socratic run` with the same config then skips
# the methods whose predictions are complete.
_WEIGHTS_GITIGNORE = """\
# Written by `socratic run`: commit the run folder without its weights and checkpoints. Predictions,
# loss curves, settings and the report (report.html included: one self-contained page) are kept; a
# later `socratic run` with the same config skips the methods whose predictions are complete.
students/**/*
!students/**/
!students/**/predictions.*
!students/**/loss.jsonl
!students/**/loss.png
!students/**/socratic.json
!students/**/manifest.json
"""


@dataclass(frozen=True)
class RunFolder:
    """The paths of one run's files, under `root`."""

    root: Path

    @property
    def record(self) -> Path:
        """run.json: the run's settings and its stages' times."""
        return self.root / "run.json"

    @property
    def chains(self) -> Path:
        return self.root / "chains.jsonl"

    @property
    def report(self) -> Path:
        return self.root / "report"

    def student(self, method: str) -> Path:
        """The method's student folder (for a method of several roles, the folder of its students)."""
        return self.root / "students" / method

    def role_student(self, method: str, role: str) -> Path:
        """The student folder of one of the method's roles."""
        return role_folder(self.student(method), method, role)

    def solve_students(self, method: str) -> dict[str, str]:
        """The method's students as `socratic solve` takes them: {"model": ...}, or {"qg": ..., "qa": ...}."""
        roles = METHODS[method].roles
        if len(roles) == 1:
            return {"model": str(self.student(method))}
        return {role: str(self.role_student(method, role)) for role in roles}

    def predictions(self, method: str, dataset: str, split: str) -> Path:
        """The method's answers to `dataset`'s `split`: where `socratic solve` writes them by default."""
        return student_folder.predictions_file(self.student(method), dataset, split)

    def is_run(self) -> bool:
        return self.record.is_file()

    def finished(self) -> bool:
        """Whether the run wrote its report (results.md is the report's first file)."""
        return (self.report / "results.md").exists()

    def ignore_weights(self) -> None:
        (self.root / ".gitignore").write_text(_WEIGHTS_GITIGNORE, encoding="utf-8")
