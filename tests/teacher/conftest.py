"""A real OpenAI-compatible teacher for the tests: llama.cpp's own server on 127.0.0.1, serving the
package-provided SmolLM2-135M GGUF (installed by the README's `[models]` extra)."""

import importlib.util

import pytest

from socratic.testing.llama_server import LlamaServer
from socratic.weights import models


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("uvicorn") is None:
        pytest.skip("llama-cpp-python[server] is not installed: pip install -e '.[models]'")
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with LlamaServer(models.resolve("smollm2-135m", want="gguf"), log) as url:
        yield url
