"""The manifest beside an output: written whole or not at all."""

import json
import os

import pytest

from socratic.core.errors import SocraticError
from socratic.core.manifest import manifest_path, write_manifest


def test_manifest_is_written_beside_its_output(tmp_path):
    output = tmp_path / "chains.jsonl"
    path = write_manifest(output, "annotate", {"limit": 3}, started=0.0, commit=None, problems=3)
    assert path == manifest_path(output) and json.loads(path.read_text())["problems"] == 3
    assert os.listdir(tmp_path) == ["chains.manifest.json"]


def test_a_manifest_that_cannot_be_written_leaves_no_temporary_file(tmp_path):
    output = tmp_path / "chains.jsonl"
    manifest_path(output).mkdir()  # a folder where the manifest goes
    with pytest.raises(SocraticError, match=r"^cannot write .*chains\.manifest\.json: Is a directory$"):
        write_manifest(output, "annotate", {}, started=0.0, commit=None)
    assert os.listdir(tmp_path) == ["chains.manifest.json"] and os.listdir(manifest_path(output)) == []
