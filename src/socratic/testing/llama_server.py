"""Start llama.cpp's own OpenAI-compatible server on 127.0.0.1 for a GGUF: a real local teacher.

    python -m llama_cpp.server --model $(python -c "from socratic import models; \\
        print(models.resolve('qwen2.5-coder-1.5b', want='gguf'))") --port 8080 --interrupt_requests False

`LlamaServer` does the same from Python (tests, benchmarks) and waits until it answers. We run
llama.cpp's server, not a server of our own: any OpenAI-compatible server works the same way.
`--interrupt_requests False` matters with several requests in flight: by default the server aborts
a streaming request when the next one arrives. On CPUs with AMX, start it as
`python -m socratic.llamacpp.buffers` (the same server and flags; see that module for why).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from socratic.core.machine import threads_within_cores


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """`with LlamaServer(gguf, log) as url:` — the server runs, logging to `log`, until the block ends."""

    def __init__(
        self,
        gguf: str | Path,
        log: str | Path,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        startup_timeout: float = 120.0,
    ):
        self.gguf, self.log, self.n_ctx = str(gguf), Path(log), n_ctx
        self.n_threads = threads_within_cores(n_threads)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> str:
        port = free_port()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        # The log goes to a file: a pipe nobody reads fills up with llama.cpp's chatter and stalls the server.
        with open(self.log, "wb") as log_file:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "socratic.llamacpp.buffers",  # llama_cpp.server, safe on AMX CPUs
                    "--model",
                    self.gguf,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--n_ctx",
                    str(self.n_ctx),
                    "--n_threads",
                    str(self.n_threads),
                    "--seed",
                    "0",
                    "--interrupt_requests",
                    "False",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2):
                    return url
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"llama.cpp server did not answer within {self.startup_timeout:.0f} s; see {self.log}")

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None
