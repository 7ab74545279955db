"""`socratic run --status`: where a run stands, read from its folder alone.

    socratic run --config cpu-gsm8k-2400 --out results/cpu-gsm8k-2400 --status

For the chains and each student of the run: trained (with its steps), training (the last checkpoint's
step of the planned steps), or not started; then how many test problems it has solved and how many
of those are right. "now" marks work a process is doing at this moment: the lock that a training
run holds on its student folder, or the one a solve holds on its predictions file (read from the
kernel's table of locks, /proc/locks, so looking never disturbs the runs). Nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from socratic.commands.run_folder import RunFolder
from socratic.core.errors import SocraticError
from socratic.core.jsonl import read_jsonl, read_state
from socratic.core.locks import held_now
from socratic.core.manifest import manifest_path
from socratic.core.records import Prediction
from socratic.text.methods import METHODS
from socratic.weights import student_folder


def run_status(methods: Sequence[str], folder: RunFolder, dataset: str, split: str, test_ids: set[str]) -> str:
    """A table of the run in `folder`: its chains, and per student its training and its predictions
    of `dataset`'s `split`, the test problems `test_ids`."""
    if not folder.is_run():
        return f"{folder.root}: no run here yet"
    chains = folder.chains
    rows = [("chains", _count_lines(chains) if chains.is_file() else "not annotated yet", "")]
    for method in methods:
        roles = METHODS[method].roles
        for n, role in enumerate(roles):
            name = method if len(roles) == 1 else f"{method} {role}"
            last = n == len(roles) - 1  # the method's predictions go on its last row
            solved = solving_state(folder.predictions(method, dataset, split), test_ids) if last else ""
            rows.append((name, training_state(folder.role_student(method, role)), solved))
    lines = ["| student | training | test problems solved |", "|---|---|---|"]
    lines += [f"| {name} | {state} | {solved} |" for name, state, solved in rows]
    return "\n".join(lines)


def training_state(student: Path) -> str:
    now = " (now)" if held_now(student_folder.training_lock(student)) else ""
    manifest = manifest_path(student)
    try:
        if manifest.is_file() and student_folder.info_path(student).is_file():
            steps = read_state(manifest, "retrain the student to write it again").get("steps")
            return f"trained, {steps:,} steps" if _whole(steps) else "trained"
        latest = student_folder.latest_checkpoint(student)
        if latest is None:
            return f"started, no checkpoint yet{now}" if now else "not started"
        fix = f"delete {latest.name} to resume from the checkpoint before it"
        state = read_state(latest / "trainer_state.json", fix)
        step, planned = state.get("global_step"), state.get("max_steps")
        if not (_whole(step) and _whole(planned)):
            raise SocraticError(f"{latest / 'trainer_state.json'} is damaged (no whole global_step, max_steps): {fix}")
    except SocraticError as e:  # looking never fails: the table names the damaged file and what to do
        return " ".join(str(e).split()).replace("|", "/")
    return f"step {step:,} of {planned:,}{now}"


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def solving_state(predictions: Path, test_ids: set[str]) -> str:
    if not predictions.is_file():
        return "–"
    try:
        solved = {p.problem_id: p for p in read_jsonl(predictions, Prediction) if p.problem_id in test_ids}
    except SocraticError as e:  # a damaged row: named in the cell (solve itself stops at it)
        return " ".join(str(e).split()).replace("|", "/")
    right = sum(bool(p.correct) for p in solved.values())
    share = f" ({100 * right / len(solved):.1f} % right)" if solved else ""
    now = " (now)" if held_now(predictions) else ""
    return f"{len(solved):,} of {len(test_ids):,}{share}{now}"


def _count_lines(path: Path) -> str:
    with path.open("rb") as f:
        return f"{sum(1 for _ in f):,} chains"
