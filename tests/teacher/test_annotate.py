"""`socratic annotate` end to end: against llama.cpp's real server, under faults, killed and resumed."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from socratic.core.config import build
from socratic.core.errors import SocraticError
from socratic.core.jsonl import read_jsonl
from socratic.core.records import Chain
from socratic.tasks import load_task
from socratic.teacher.annotate import AnnotateConfig, _judge, replies_path, run_annotate
from tests.teacher.fault_server import FaultServer

SMALL = dict(dataset="svamp", split="train", limit=3, max_tokens=48)


def annotate_config(**values) -> AnnotateConfig:
    """The command's options by flag name, the data options among them."""
    return build(AnnotateConfig, values)


def reply_keys(out: Path) -> list[tuple[str, int]]:
    return [(row["problem_id"], row["sample"]) for row in read_jsonl(replies_path(out))]


@pytest.mark.slow
def test_against_llama_cpp_server_and_resume_without_new_requests(llama_server, tmp_path, capsys):
    config = annotate_config(
        teacher=f"openai:{llama_server}",
        out=str(tmp_path / "chains.jsonl"),
        samples=2,
        chat_jsonl=str(tmp_path / "chat.jsonl"),
        **SMALL,
    )
    out = run_annotate(config)
    summary = capsys.readouterr().out
    assert "problems                    3" in summary and "replies (new this run)      6 (6)" in summary
    keys = reply_keys(out)
    assert len(set(keys)) == 6 and {sample for _, sample in keys} == {0, 1}
    rows = list(read_jsonl(replies_path(out)))
    assert all(r["tokens_in"] > 0 and r["tokens_out"] > 0 and r["model"] for r in rows)
    chains = list(read_jsonl(out, Chain))
    assert all(c.correct and c.source.startswith("teacher:") for c in chains)
    manifest = json.loads((tmp_path / "chains.manifest.json").read_text())
    assert manifest["problems"] == 3 and manifest["config"]["samples"] == 2
    # The same command again: everything is cached, no request is made, the outputs are the same.
    run_annotate(config)
    assert "replies (new this run)      6 (0)" in capsys.readouterr().out
    assert reply_keys(out) == keys and list(read_jsonl(out, Chain)) == chains
    # More samples reuse the first two and ask only for the third.
    run_annotate(dataclasses.replace(config, samples=3))
    assert "replies (new this run)      9 (3)" in capsys.readouterr().out


def test_replies_are_counted_and_cached_across_reruns_and_more_samples(tmp_path, capsys):
    # Fast twin of the test above, against the fault-injection server answering every request.
    problems = tmp_path / "twos.jsonl"
    problems.write_text(
        "".join(json.dumps({"question": f"What is {i}+{2 - i}?", "answer": 2}) + "\n" for i in range(3))
    )
    with FaultServer(["ok"]) as server:
        config = annotate_config(
            dataset=str(problems),
            split="all",
            teacher=f"openai:{server.url}",
            out=str(tmp_path / "chains.jsonl"),
            samples=2,
            chat_jsonl=str(tmp_path / "chat.jsonl"),
        )
        out = run_annotate(config)
        summary = capsys.readouterr().out
        assert "problems                    3" in summary and "replies (new this run)      6 (6)" in summary
        keys = reply_keys(out)
        assert len(set(keys)) == 6 and {sample for _, sample in keys} == {0, 1}
        rows = list(read_jsonl(replies_path(out)))
        assert all(r["tokens_in"] > 0 and r["tokens_out"] > 0 and r["model"] for r in rows)
        chains = list(read_jsonl(out, Chain))
        assert len(chains) == 3 and all(c.correct and c.source.startswith("teacher:") for c in chains)
        assert len((tmp_path / "chat.jsonl").read_text().splitlines()) == 3
        manifest = json.loads((tmp_path / "chains.manifest.json").read_text())
        assert manifest["problems"] == 3 and manifest["config"]["samples"] == 2
        # The same command again: everything is cached, no request is made, the outputs are the same.
        run_annotate(config)
        assert "replies (new this run)      6 (0)" in capsys.readouterr().out
        assert server.requests == 6
        assert reply_keys(out) == keys and list(read_jsonl(out, Chain)) == chains
        # More samples reuse the first two and ask only for the third.
        run_annotate(dataclasses.replace(config, samples=3))
        assert "replies (new this run)      9 (3)" in capsys.readouterr().out
        assert server.requests == 9


@pytest.mark.slow
def test_completion_endpoint(llama_server, tmp_path, capsys):
    config = annotate_config(
        teacher=f"openai:{llama_server}", endpoint="completion", out=str(tmp_path / "c.jsonl"), **{**SMALL, "limit": 2}
    )
    run_annotate(config)
    assert len(reply_keys(Path(config.out))) == 2


def test_failed_requests_are_reported_and_retried_by_a_rerun(tmp_path, capsys):
    problems = tmp_path / "ones.jsonl"
    problems.write_text(
        "".join(json.dumps({"question": f"What is {i}+{2 - i}?", "answer": 2}) + "\n" for i in range(3))
    )
    out = tmp_path / "chains.jsonl"
    config = annotate_config(dataset=str(problems), split="all", out=str(out), max_retries=1, concurrency=1)
    # Requests 1-2 succeed, then the server fails for good: the third problem's request is lost.
    with (
        FaultServer(["ok", "ok", "500"]) as server,
        pytest.raises(SocraticError, match=r"1 teacher requests failed .* rerun the same command"),
    ):
        run_annotate(dataclasses.replace(config, teacher=f"openai:{server.url}"))
    assert len(reply_keys(out)) == 2 and len(list(read_jsonl(out, Chain))) == 2
    with FaultServer(["ok"]) as server:
        run_annotate(dataclasses.replace(config, teacher=f"openai:{server.url}"))
        assert server.requests == 1  # only the missing one
    assert len(reply_keys(out)) == 3 and len(list(read_jsonl(out, Chain))) == 3


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_run_resumes_to_the_same_result(llama_server, tmp_path, sig):
    def command(out):
        return [
            sys.executable,
            "-m",
            "socratic",
            "annotate",
            "--dataset",
            "svamp",
            "--split",
            "train",
            "--limit",
            "16",
            "--max-tokens",
            "32",
            "--teacher",
            f"openai:{llama_server}",
            "--concurrency",
            "2",
            "--out",
            str(out),
        ]

    # 16 problems at a few tenths of a second each leave seconds between the third reply and the end,
    # so the signal lands mid-run even on a loaded machine.
    interrupted = tmp_path / "interrupted" / "chains.jsonl"
    # A shell starts background jobs with SIGINT ignored, and children inherit that (CI may run us so):
    # give the run the default disposition, so that Python turns SIGINT into KeyboardInterrupt.
    process = subprocess.Popen(
        command(interrupted),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if replies_path(interrupted).exists() and len(replies_path(interrupted).read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be interrupted"
    os.kill(process.pid, sig)
    status = process.wait(timeout=60)
    assert status == (-signal.SIGKILL if sig == signal.SIGKILL else 130)
    partial = reply_keys(interrupted)
    assert 3 <= len(partial) < 16
    subprocess.run(command(interrupted), check=True, capture_output=True)
    resumed = reply_keys(interrupted)
    assert resumed[: len(partial)] == partial  # nothing lost
    assert len(resumed) == len(set(resumed)) == 16  # nothing twice

    straight = tmp_path / "straight" / "chains.jsonl"
    subprocess.run(command(straight), check=True, capture_output=True)
    assert sorted(resumed) == sorted(reply_keys(straight))
    texts = lambda out: {(r["problem_id"], r["sample"]): r["text"] for r in read_jsonl(replies_path(out))}  # noqa: E731
    assert texts(interrupted) == texts(straight)  # greedy: the resumed run is the uninterrupted run


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_run_resumes_without_losses_or_repeats_fault_server(tmp_path, sig):
    # Fast twin of the test above: the fault-injection server answers every request after 0.1 s, and the
    # resumed run asks only for the replies the killed one did not save.
    def command(out, url):
        return [
            *[sys.executable, "-m", "socratic", "annotate", "--dataset", "svamp", "--split", "train"],
            *["--limit", "16", "--teacher", f"openai:{url}", "--concurrency", "2", "--out", str(out)],
        ]

    interrupted = tmp_path / "chains.jsonl"
    with FaultServer(["timeout"], delay=0.1) as server:
        process = subprocess.Popen(
            command(interrupted, server.url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if replies_path(interrupted).exists() and len(replies_path(interrupted).read_text().splitlines()) >= 3:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the run finished before it could be interrupted"
        os.kill(process.pid, sig)
        status = process.wait(timeout=60)
    assert status == (-signal.SIGKILL if sig == signal.SIGKILL else 130)
    partial = reply_keys(interrupted)
    assert 3 <= len(partial) < 16
    with FaultServer(["ok"]) as server:
        subprocess.run(command(interrupted, server.url), check=True, capture_output=True)
        assert server.requests == 16 - len(partial), "only the missing replies are asked for"
    resumed = reply_keys(interrupted)
    assert resumed[: len(partial)] == partial  # nothing lost
    assert len(resumed) == len(set(resumed)) == 16  # nothing twice


@pytest.mark.parametrize(
    ("text", "finish", "outcome"),
    [
        ("", "stop", "empty"),
        ("Q: a?\nA: 1+1 = 2", "length", "too long"),
        ("Sure! Here is the solution.\nQ: What is 1+1?\nA: 1+1 = <<1+1=2>>2\nAnswer: 2", "stop", "kept"),
        ("The answer is obvious.", "stop", "unparseable"),
        ("Q: What is 1+1?\nA:\nAnswer: 2", "stop", "unparseable"),
        ("Q: What is 1+1?\nA: I do not know.", "stop", "no answer"),
        ("Q: What is 1+1?\nA: 1+1 = 3\nAnswer: 3", "stop", "wrong answer"),
        ("```\nQ: What is 1+1?\nA: It is 2.\n```", "stop", "kept"),
    ],
)
def test_judging_replies(tmp_path, text, finish, outcome):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"question": "1+1?", "answer": 2}) + "\n")
    task = load_task(str(path))
    row = {
        "text": text,
        "finish_reason": finish,
        "sample": 0,
        "request_hash": "h",
        "tokens_in": 1,
        "tokens_out": 1,
        "seconds": 0.1,
    }
    result = _judge(row, task.load("all")[0], task, "socratic", "m")
    assert (result if isinstance(result, str) else "kept") == outcome


def test_human_teacher_on_gsm8k_is_quick_and_complete(tmp_path, capsys):
    started = time.perf_counter()
    out = run_annotate(annotate_config(dataset="gsm8k", split="train", teacher="human", out=str(tmp_path / "h.jsonl")))
    assert time.perf_counter() - started < 30
    chains = list(read_jsonl(out, Chain))
    assert len(chains) == 7473 and all(c.correct for c in chains)


def test_rejections_are_listed_by_problem_and_sample(tmp_path):
    out = run_annotate(
        annotate_config(dataset="strategyqa", split="test", teacher="human", out=str(tmp_path / "s.jsonl"))
    )
    rejected = list(read_jsonl(tmp_path / "s.rejected.jsonl"))
    kept = list(read_jsonl(out, Chain))
    assert len(rejected) + len(kept) == 229
    assert {r["reason"] for r in rejected} == {"facts do not align with subquestions"}
    assert not {r["problem_id"] for r in rejected} & {c.problem_id for c in kept}


def test_in_process_llama_cpp_and_transformers_teachers(kind, request, tmp_path, capsys, monkeypatch):
    """The two in-process engines on the tiny decoder (its folder and GGUF) or on SmolLM2 (by its name):
    replies are produced, cached and judged."""
    if kind == "tiny":
        # One core (the teachers take every usable core): llama.cpp's two threads waiting for each other
        # beside torch's made this call take 1 s or 13 s from run to run, with `-n 0`.
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
        gguf, folder = request.getfixturevalue("tiny_gguf"), request.getfixturevalue("tiny_decoder")
        teachers = (f"llamacpp:{gguf}", f"hf:{folder}")
    else:
        teachers = ("llamacpp:smollm2-135m", "hf:smollm2-135m")
    for teacher in teachers:
        out = tmp_path / teacher.split(":")[0] / "chains.jsonl"
        run_annotate(
            annotate_config(teacher=teacher, out=str(out), batch_size=2, **{**SMALL, "limit": 2, "max_tokens": 24})
        )
        rows = list(read_jsonl(replies_path(out)))
        assert len(rows) == 2 and all(r["tokens_out"] > 0 for r in rows), teacher
        assert "problems                    2" in capsys.readouterr().out


def test_a_reply_cache_is_not_continued_with_other_settings(tmp_path):
    problems = tmp_path / "ones.jsonl"
    problems.write_text("".join(json.dumps({"question": f"What is {i}+1?", "answer": i + 1}) + "\n" for i in range(2)))
    out = tmp_path / "chains.jsonl"
    with FaultServer(["ok"] * 4) as server:
        config = annotate_config(dataset=str(problems), out=str(out), concurrency=1, teacher=f"openai:{server.url}")
        run_annotate(config)
        cached = replies_path(out).read_bytes()
        with pytest.raises(SocraticError, match=r"teacher replies made with other settings \(style: 'socratic', now"):
            run_annotate(dataclasses.replace(config, style="cot"))
        with pytest.raises(SocraticError, match=r"other settings \(sampling: .*'max_tokens': 384.*'max_tokens': 99"):
            run_annotate(dataclasses.replace(config, max_tokens=99))
        assert server.requests == 2 and replies_path(out).read_bytes() == cached, "nothing asked, nothing written"
        run_annotate(dataclasses.replace(config, data=dataclasses.replace(config.data, limit=1)))  # fewer: fine
