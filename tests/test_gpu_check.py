"""benchmarks/gpu_check.sh, the prepared run for a lent GPU machine, as a dry run on this CPU: a script that
runs only on hardware a session is rarely lent would otherwise break unseen between loans."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_prepared_gpu_check_trains_solves_and_writes_its_summary_on_a_cpu(tmp_path):
    settings = {
        "OUT": str(tmp_path),
        "PYTHON": sys.executable,
        "GPU_CHECK_PROBLEMS": "4",
        "GPU_CHECK_LAYERS": "1",
        "GPU_CHECK_COMPILE": "0",
        "GPU_CHECK_SOLVE_PROBLEMS": "2",
    }
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh")],
        env=os.environ | settings,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["versions"]["device"] == "cpu" and summary["peak"]["tflops"] > 0
    assert summary["train_eager"]["steps"] >= 1 and summary["train_eager"]["tokens_per_s"] > 0
    assert "train_compiled" not in summary
    for dtype in ("float32", "bfloat16"):
        assert summary[f"solve_{dtype}"]["problems"] == 2, summary[f"solve_{dtype}"]
    assert (tmp_path / "log.txt").read_text().count("solve hf") == 2
