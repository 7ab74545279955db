"""`socratic solve` with a real model (SmolLM2-135M standing in for trained students): the iterative
command saves every problem once with all its samples, self-consistency votes, the command resumes
after a kill without duplicates, and vLLM (where installed) matches the hf engine."""

import os
import signal
import subprocess
import sys
import time

import pytest

from socratic.commands.solve import SolveConfig, run_solve
from socratic.core.config import build
from socratic.core.errors import SocraticError
from socratic.core.jsonl import read_jsonl
from socratic.core.records import Prediction
from socratic.solving.loops import Attempt, DecodeOptions, solve_one_pass
from socratic.solving.predictions import to_prediction
from socratic.tasks import load_task


@pytest.mark.slow
def test_solve_iterative_saves_every_problem_once_with_all_its_samples(make_student, tmp_path):
    check_every_problem_saved_once(make_student("qa"), tmp_path)


def test_solve_iterative_saves_every_problem_once_with_all_its_samples_tiny(make_tiny_student, tmp_path):
    # Fast twin of the test above, on a tiny student.
    check_every_problem_saved_once(make_tiny_student("qa"), tmp_path, threads=1)


def check_every_problem_saved_once(qa, tmp_path, **options):
    out = tmp_path / "oracle.jsonl"
    config = build(
        SolveConfig,
        dict(
            method="iterative",
            qa=str(qa),
            oracle=True,
            limit=3,
            samples=2,
            batch_size=3,  # fewer places than attempts: the active set rolls
            max_steps=2,
            step_tokens=8,
            out=str(out),
            **options,
        ),
    )
    run_solve(config)
    saved = list(read_jsonl(out, Prediction))
    assert sorted(p.problem_id for p in saved) == [f"gsm8k/test/{i}" for i in range(3)]
    assert all(len(p.meta["answers"]) == 2 and p.meta["seconds"] > 0 for p in saved)
    run_solve(config)  # everything is saved: nothing to do, nothing added
    assert len(list(read_jsonl(out, Prediction))) == 3


@pytest.mark.slow
def test_self_consistency_votes_on_the_answer(engine, problems):
    task = load_task("gsm8k")
    attempts = [Attempt(answer_text="42"), Attempt(answer_text="41"), Attempt(answer_text="The answer is 42")]
    prediction = to_prediction(problems[0], attempts, "unified", task, 1.0)
    assert prediction.answer == "42" and prediction.meta["votes"] == {"42": 2, "41": 1}
    config = SolveConfig(samples=3, decode=DecodeOptions(max_new_tokens=8))
    sampled = solve_one_pass(engine, [problems[0].question] * 3, config.decoding)
    assert config.sampling.temperature == 0.7 and len(sampled) == 3


def test_self_consistency_votes_on_the_answer_tiny(tiny_engine, problems):
    # Fast twin of the test above, on the tiny decoder.
    task = load_task("gsm8k")
    attempts = [Attempt(answer_text="42"), Attempt(answer_text="41"), Attempt(answer_text="The answer is 42")]
    prediction = to_prediction(problems[0], attempts, "unified", task, 1.0)
    assert prediction.answer == "42" and prediction.meta["votes"] == {"42": 2, "41": 1}
    config = SolveConfig(samples=3, decode=DecodeOptions(max_new_tokens=8))
    sampled = solve_one_pass(tiny_engine, [problems[0].question] * 3, config.decoding)
    assert config.sampling.temperature == 0.7 and len(sampled) == 3
    assert len({a.output for a in sampled}) > 1, "samples differ"


def _solve_command(student, out, limit):
    return [
        sys.executable,
        "-m",
        "socratic.cli",
        "solve",
        "--method",
        "unified",
        "--model",
        str(student),
        "--limit",
        str(limit),
        "--chunk",
        "1",
        "--batch-size",
        "1",
        "--max-new-tokens",
        "24",
        "--out",
        str(out),
    ]


@pytest.mark.slow
def test_solve_resumes_after_a_kill_without_duplicates(make_student, tmp_path):
    student = make_student("unified")
    out = tmp_path / "predictions.jsonl"
    child = subprocess.Popen(_solve_command(student, out, 5), stderr=subprocess.DEVNULL, preexec_fn=os.setpgrp)
    deadline = time.time() + 300
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 2):
        time.sleep(0.2)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    before = list(read_jsonl(out, Prediction))
    assert 2 <= len(before) < 5
    subprocess.run(_solve_command(student, out, 5), check=True, stderr=subprocess.DEVNULL)
    after = list(read_jsonl(out, Prediction))
    assert [p.problem_id for p in after] == [f"gsm8k/test/{i}" for i in range(5)]
    assert after[: len(before)] == before
    fresh = tmp_path / "fresh.jsonl"
    subprocess.run(_solve_command(student, fresh, 5), check=True, stderr=subprocess.DEVNULL)
    assert [p.output for p in read_jsonl(fresh, Prediction)] == [p.output for p in after]


def test_solve_resumes_after_an_interruption_without_duplicates_tiny(make_tiny_student, tmp_path, monkeypatch):
    # Fast twin of the test above, in process on a tiny student: the run stops during its third chunk
    # (after writing half a row, as a kill can leave), and the same command, through the CLI, completes it.
    from socratic.cli import main
    from socratic.commands import solve

    student = make_tiny_student("unified")
    out = tmp_path / "predictions.jsonl"
    argv = [*_solve_command(student, out, 5)[3:], "--threads", "1"]
    one_pass, calls = solve.solve_one_pass, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            with out.open("a") as f:
                f.write('{"problem_id": "gsm8k/test/2", "meth')
            raise KeyboardInterrupt
        return one_pass(*args, **kwargs)

    monkeypatch.setattr(solve, "solve_one_pass", interrupted)
    assert main(argv) == 130, "interrupted"
    monkeypatch.setattr(solve, "solve_one_pass", one_pass)
    before = list(read_jsonl(out, Prediction))
    assert len(before) == 2, "each chunk is saved as it ends"
    assert main(argv) == 0
    after = list(read_jsonl(out, Prediction))
    assert [p.problem_id for p in after] == [f"gsm8k/test/{i}" for i in range(5)]
    assert after[: len(before)] == before
    fresh = tmp_path / "fresh.jsonl"
    main([*_solve_command(student, fresh, 5)[3:], "--threads", "1"])
    assert [p.output for p in read_jsonl(fresh, Prediction)] == [p.output for p in after]


@pytest.mark.slow
def test_vllm_matches_hf(make_student, engine, problems):
    import importlib.util

    import torch

    if importlib.util.find_spec("vllm") is None or not torch.cuda.is_available():
        pytest.skip("needs vLLM and a GPU (socratic[vllm])")
    from socratic.engines import VLLMEngine

    prompts = [f"Problem: {p.question}\nQ:" for p in problems]
    theirs = VLLMEngine(make_student("unified")).complete(prompts, "line", 24, calculator=True)
    ours = engine.complete(prompts, "line", 24, calculator=True)
    assert sum(a.text == b.text for a, b in zip(ours, theirs, strict=True)) >= len(prompts) - 1


@pytest.fixture
def tiny_student(tiny_model, tmp_path):
    """The tiny random model as a trained unified student: fast enough to solve in the fast tier."""
    import shutil

    from socratic.weights.student_folder import StudentInfo, write_info

    folder = shutil.copytree(tiny_model, tmp_path / "tiny-unified")
    write_info(folder, StudentInfo(role="unified", base_model=str(tiny_model), data_hash="d"))
    return folder


def test_predictions_are_continued_only_with_the_settings_that_made_them(tiny_student, tmp_path):
    out = tmp_path / "p.jsonl"
    values = dict(method="unified", model=str(tiny_student), limit=2, max_new_tokens=4, out=str(out), chunk=1)
    run_solve(build(SolveConfig, values))
    saved = out.read_bytes()
    run_solve(build(SolveConfig, {**values, "limit": 3, "batch_size": 2}))  # further, and faster: the same run
    assert len(list(read_jsonl(out, Prediction))) == 3
    with pytest.raises(SocraticError, match=r"holds predictions made with other settings \(max_new_tokens: 4, now 8\)"):
        run_solve(build(SolveConfig, {**values, "max_new_tokens": 8}))
    with pytest.raises(SocraticError, match=r"other settings \(students: .*"):
        other = tmp_path / "other"
        shutil_copy(tiny_student, other, data_hash="e")
        run_solve(build(SolveConfig, {**values, "model": str(other)}))
    assert out.read_bytes().startswith(saved)


def shutil_copy(student, target, **info):
    import dataclasses
    import shutil

    from socratic.weights.student_folder import read_info, write_info

    shutil.copytree(student, target)
    write_info(target, dataclasses.replace(read_info(student), **info))


def test_a_second_solve_on_the_same_output_stops_before_any_work(tiny_student, tmp_path):
    from socratic.core.jsonl import JsonlAppender

    out = tmp_path / "p.jsonl"
    config = build(
        SolveConfig, dict(method="unified", model=str(tiny_student), limit=2, max_new_tokens=4, out=str(out))
    )
    with JsonlAppender(out), pytest.raises(SocraticError, match="is being written by another process"):
        run_solve(config)  # as if another `socratic solve --out p.jsonl` were running
    assert out.read_text() == ""
    run_solve(config)
    assert len(list(read_jsonl(out, Prediction))) == 2
