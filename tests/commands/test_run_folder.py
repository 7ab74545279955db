"""The run folder's layout has one home, `RunFolder`: the runs committed in results/ are read through it
(their file names are those it gives), and solve's default predictions file is the one the run reads."""

from pathlib import Path

import pytest

from socratic.commands.pipeline import load_config, stage_configs
from socratic.commands.run_folder import RunFolder
from socratic.commands.solve import default_output
from socratic.tasks import load_task
from socratic.text.methods import METHODS
from socratic.weights import student_folder

RESULTS = Path(__file__).parents[2] / "results"
# Runs that `socratic run` wrote and that were committed whole (their config, chains, students, report).
COMMITTED = {"cpu-svamp": "svamp", "cpu-gsm8k": "gsm8k", "cpu-strategyqa": "strategyqa", "demo-avx2-float32": "svamp"}


@pytest.mark.parametrize("name", sorted(COMMITTED))
def test_the_committed_runs_are_read_through_the_run_folder(name):
    run = RunFolder(RESULTS / name)
    assert run.is_run() and run.finished()
    assert run.chains.is_file()
    for method, spec in METHODS.items():
        assert run.predictions(method, COMMITTED[name], "test").is_file(), method
        for role in spec.roles:
            assert student_folder.read_info(run.role_student(method, role)).role == role


def test_the_run_writes_the_gitignore_of_the_committed_runs(tmp_path):
    # The committed runs carry the .gitignore of the version that wrote them: the rules are unchanged.
    run = RunFolder(tmp_path)
    run.ignore_weights()
    assert (tmp_path / ".gitignore").read_text() == (RESULTS / "cpu-svamp" / ".gitignore").read_text()


@pytest.mark.parametrize("method", sorted(METHODS))
def test_solve_writes_by_default_where_the_run_reads_predictions(method):
    run = RunFolder(Path("RUN"))
    solve = stage_configs(load_config("tiny"), run)[f"solve {method}"]
    task = load_task("svamp")
    assert default_output(solve, task, "test") == run.predictions(method, "svamp", "test")
    assert solve.student_folders() == {role: str(run.role_student(method, role)) for role in METHODS[method].roles}


def test_an_empty_folder_is_not_a_run(tmp_path):
    run = RunFolder(tmp_path)
    assert not run.is_run() and not run.finished()
    (tmp_path / "run.json").write_text("{}")
    assert run.is_run() and not run.finished()
