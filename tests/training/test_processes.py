"""Several processes: `accelerate launch` (DDP; on a machine without GPUs, over gloo on the CPU) trains
as one process does with the same global batch, and a killed two-process training resumes."""

import dataclasses
import json

import pytest

from socratic.core.jsonl import write_jsonl
from socratic.tasks import gsm8k
from socratic.teacher.human import human_chain
from socratic.training.train import run_train
from tests.training.runs import check_trained_student, losses_of, quick


def launch(processes, chains_file, model, out, *flags, wait=True):
    """`accelerate launch --multi_gpu --num_processes N -m socratic train ...` as a user types it (without GPUs
    accelerate runs the processes on the CPU, over gloo; its `--cpu` flag would start only one)."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes)]
    command += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    command += ["--main_process_ip", "127.0.0.1", "--main_process_port", str(port), "-m", "socratic", "train"]
    command += ["--chains", str(chains_file), "--model", str(model), "--out", str(out), "--threads", "1", "--no-bf16"]
    command += ["--max-length", "256", "--learning-rate", "3e-3", "--warmup-ratio", "0", "--logging-steps", "1", *flags]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    run = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    if not wait:
        return run
    stdout, stderr = run.communicate(timeout=900)
    assert run.returncode == 0, stderr[-3000:]
    return stdout, stderr


@pytest.mark.slow
def test_two_processes_train_like_one_with_the_same_global_batch(tiny_model, chains_file, tmp_path):
    # One process with 4 rows a step against two with 2 rows each: the same rows, the same loss (transformers
    # averages the loss over the tokens of all processes). Measured: equal to 1e-6; allowed: 1e-4 relative.
    # 8 chains make 8 rows of 256 tokens, two global batches an epoch: an epoch's last batch that does not
    # divide among the processes is filled by accelerate with rows from its start, so it would differ.
    problems = gsm8k.load("train")[:8]
    chains = [human_chain(p, "socratic") for p in problems]
    chains_file = write_jsonl(tmp_path / "chains.jsonl", chains)
    one = quick(tiny_model, chains_file, tmp_path / "one", max_steps=3, batch_size=4, max_length=256, bf16=False)
    alone = run_train(dataclasses.replace(one, threads=1))
    two = tmp_path / "two"
    stdout, _ = launch(2, chains_file, tiny_model, two, "--max-steps", "3", "--batch-size", "2")
    assert stdout.count("unified student of") == 1  # one summary: the main process's
    manifest = json.loads((two / "manifest.json").read_text())
    assert manifest["processes"] == 2 and manifest["steps"] == 3
    assert not list(two.glob("*.tmp"))  # the folder was written once, by the main process
    assert losses_of(two) == pytest.approx(losses_of(alone), rel=1e-4)
    check_trained_student(two, tiny_model, "unified")


@pytest.mark.slow
def test_a_killed_two_process_training_resumes_from_its_checkpoint(tiny_model, chains_file, tmp_path):
    import time

    from socratic.weights.student_folder import latest_checkpoint

    out = tmp_path / "two"
    run = launch(
        2, chains_file, tiny_model, out, "--max-steps", "40", "--batch-size", "2", "--save-steps", "2", wait=False
    )
    deadline = time.time() + 600
    while latest_checkpoint(out) is None and run.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    # The launcher and both training processes (torch's launcher starts them in sessions of their own), at once,
    # as when a machine is lost.
    import psutil

    launcher = psutil.Process(run.pid)
    started = [*launcher.children(recursive=True), launcher]
    for process in started:
        process.kill()
    psutil.wait_procs(started, timeout=60)
    run.wait()
    saved = latest_checkpoint(out)
    assert saved is not None and not (out / "model.safetensors").exists()
    done = int(saved.name.split("-")[1])
    _, stderr = launch(
        2, chains_file, tiny_model, out, "--max-steps", str(done + 4), "--batch-size", "2", "--save-steps", "2"
    )
    assert f"resuming from {saved}" in stderr
    steps = [json.loads(line)["step"] for line in (out / "loss.jsonl").read_text().splitlines()]
    assert steps == list(range(1, done + 5))
    assert json.loads((out / "manifest.json").read_text())["steps"] == done + 4
