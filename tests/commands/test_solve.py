"""`socratic solve` with a real model (SmolLM2-135M standing in for trained students): the iterative
command saves every problem once with all its samples, self-consistency votes, the command resumes
after a kill without duplicates, and vLLM (where installed) matches the hf engine."""

import json
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
from socratic.core.manifest import manifest_path
from socratic.core.records import Prediction
from socratic.solving.loops import Attempt, DecodeOptions, solve_one_pass
from socratic.solving.predictions import to_prediction
from socratic.tasks import load_task


def test_solve_iterative_saves_every_problem_once_with_all_its_samples(any_make_student, engine_threads, tmp_path):
    out = tmp_path / "oracle.jsonl"
    config = build(
        SolveConfig,
        dict(
            method="iterative",
            qa=str(any_make_student("qa")),
            oracle=True,
            limit=3,
            samples=2,
            batch_size=3,  # fewer places than attempts: the active set rolls
            max_steps=2,
            step_tokens=8,
            threads=engine_threads,
            out=str(out),
        ),
    )
    run_solve(config)
    saved = list(read_jsonl(out, Prediction))
    assert sorted(p.problem_id for p in saved) == [f"gsm8k/test/{i}" for i in range(3)]
    assert all(len(p.meta["answers"]) == 2 and p.meta["seconds"] > 0 for p in saved)
    run_solve(config)  # everything is saved: nothing to do, nothing added
    assert len(list(read_jsonl(out, Prediction))) == 3


def test_self_consistency_votes_on_the_answer(any_engine, kind, problems):
    task = load_task("gsm8k")
    attempts = [Attempt(answer_text="42"), Attempt(answer_text="41"), Attempt(answer_text="The answer is 42")]
    prediction = to_prediction(problems[0], attempts, "unified", task, 1.0)
    assert prediction.answer == "42" and prediction.meta["votes"] == {"42": 2, "41": 1}
    config = SolveConfig(samples=3, decode=DecodeOptions(max_new_tokens=8))
    sampled = solve_one_pass(any_engine, [problems[0].question] * 3, config.decoding)
    assert config.sampling.temperature == 0.7 and len(sampled) == 3
    if kind == "tiny":  # SmolLM2 at 0.7 may well write one answer line three times; the tiny decoder does not
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


def test_a_tie_goes_to_the_earliest_attempts_answer_and_the_cost_is_every_attempts_tokens(problems):
    task = load_task("gsm8k")

    def voted(*answers: str) -> Prediction:
        attempts = [Attempt(answer_text=a, tokens=10 + n) for n, a in enumerate(answers)]
        return to_prediction(problems[0], attempts, "iterative", task, 1.0)

    tied = voted("41", "42", "42", "41")
    assert tied.answer == "41" and tied.meta["votes"] == {"41": 2, "42": 2}
    assert tied.meta["answers"] == ["41", "42", "42", "41"] and tied.meta["tokens"] == 10 + 11 + 12 + 13
    assert tied.meta["attempt_tokens"] == [10, 11, 12, 13]
    assert voted("no number", "7", "8").answer == "7", "an attempt without an answer has no vote"
    assert voted("8", "7", "7").answer == "7", "a majority beats the first attempt"


def _sampled_pair_config(make_tiny_student, out, **options) -> SolveConfig:
    values = dict(
        method="iterative",
        qg=str(make_tiny_student("qg")),
        qa=str(make_tiny_student("qa")),
        limit=3,
        samples=3,
        qg_temperature=1.0,
        batch_size=4,  # fewer places than the 9 attempts: the active set rolls over problems
        max_steps=2,
        step_tokens=8,
        threads=1,
        out=str(out),
    )
    return build(SolveConfig, {**values, **options})


@pytest.mark.parametrize("engine_name", ["hf", "llamacpp"])
def test_the_pair_votes_over_sampled_decompositions_and_resumes_without_duplicates_tiny(
    engine_name, make_tiny_student, tmp_path, monkeypatch
):
    from socratic.commands import solve

    out = tmp_path / "sc.jsonl"
    config = _sampled_pair_config(make_tiny_student, out, engine=engine_name)
    assert config.decoding.sampling.temperature == 0 and config.decoding.qg_sampling.temperature == 1.0
    saving, saved_now = solve.to_prediction, []

    def interrupted(*args, **kwargs):
        if saved_now:  # the second problem to end: stop, as a kill would, after the first is saved
            raise KeyboardInterrupt
        saved_now.append(1)
        return saving(*args, **kwargs)

    monkeypatch.setattr(solve, "to_prediction", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_solve(config)
    monkeypatch.setattr(solve, "to_prediction", saving)
    assert len(list(read_jsonl(out, Prediction))) == 1
    run_solve(config)
    predictions = list(read_jsonl(out, Prediction))
    assert sorted(p.problem_id for p in predictions) == [f"gsm8k/test/{i}" for i in range(3)]
    for p in predictions:
        assert len(p.meta["answers"]) == 3 and sum(p.meta["votes"].values()) == sum(
            a is not None for a in p.meta["answers"]
        )
        assert p.meta["tokens"] == sum(p.meta["attempt_tokens"]) and min(p.meta["attempt_tokens"]) > 0
    manifest = json.loads(manifest_path(out).read_text())
    run_solve(config)  # all saved: nothing to do (with a QG to run, this raised ValueError: no QG engine)
    assert len(list(read_jsonl(out, Prediction))) == 3
    assert json.loads(manifest_path(out).read_text()) == manifest  # the seconds of the run that solved them
    with pytest.raises(SocraticError, match=r"other settings \(qg_sampling"):
        run_solve(_sampled_pair_config(make_tiny_student, out, engine=engine_name, qg_temperature=0.5))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(temperature=0.7), "--qg-temperature keeps QA greedy: leave out --temperature"),
        (
            dict(method="unified", model="m"),
            "--qg-temperature samples the question generator: use it with --method iterative",
        ),
        (dict(method="iterative", qa="qa", oracle=True), "use it with --method iterative, without --oracle"),
    ],
)
def test_qg_temperature_is_refused_where_there_is_no_sampled_qg(options, message):
    with pytest.raises(SocraticError, match=message):
        run_solve(build(SolveConfig, {"qg_temperature": 0.7, **options}))


@pytest.mark.slow
def test_the_pair_votes_over_sampled_decompositions_on_smollm2(make_student, tmp_path):
    """SmolLM2 as both students on llama.cpp: five decompositions of each of two problems, QG sampled at
    0.7 and QA greedy, vote and cost recorded; the base model's lines differ between samples."""
    out = tmp_path / "sc.jsonl"
    values = dict(
        method="iterative",
        qg=str(make_student("qg")),
        qa=str(make_student("qa")),
        limit=2,
        samples=5,
        qg_temperature=0.7,
        engine="llamacpp",
        max_steps=2,
        step_tokens=24,
        out=str(out),
    )
    run_solve(build(SolveConfig, values))
    predictions = list(read_jsonl(out, Prediction))
    assert [p.problem_id for p in sorted(predictions, key=lambda p: p.problem_id)] == ["gsm8k/test/0", "gsm8k/test/1"]
    for p in predictions:
        assert len(p.meta["answers"]) == 5 and p.meta["tokens"] > 5 * 2
        if p.meta["votes"]:
            assert p.answer == max(p.meta["votes"], key=p.meta["votes"].get)
