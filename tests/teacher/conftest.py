"""A real OpenAI-compatible teacher for the tests: llama.cpp's own server on 127.0.0.1, serving the
package-provided SmolLM2-135M GGUF (installed by the README's `[models]` extra)."""

import importlib.util
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from socratic import models


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llama_server(gguf: str, log: Path, timeout: float = 120.0) -> tuple[subprocess.Popen, str]:
    """Start `python -m llama_cpp.server` and wait until it answers. Its log goes to a file: a pipe
    nobody reads fills up with llama.cpp's chatter and stalls the server."""
    port = free_port()
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                gguf,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
                "--n_threads",
                "2",
                "--seed",
                "0",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("llama.cpp server did not start in time")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    if importlib.util.find_spec("llama_cpp.server") is None or importlib.util.find_spec("uvicorn") is None:
        pytest.skip("llama-cpp-python[server] is not installed: pip install -e '.[models]'")
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    process, url = start_llama_server(str(models.resolve("smollm2-135m", want="gguf")), log)
    yield url
    process.terminate()
    process.wait(timeout=30)
