"""GGUF conversions: what an export keeps of its template; a GGUF's layout read in parts."""

import pytest

from socratic.core.errors import SocraticError
from socratic.weights import gguf_io
from socratic.weights.gguf_io import _Layout


def test_an_export_keeps_its_templates_metadata_byte_for_byte_and_its_tensors_in_order(tiny_gguf, tiny_template):
    # The template is read as raw bytes and its values written back by gguf-py's writer: any value decoded
    # wrongly (a type, an array's items, the vocabulary's strings) shows here as different bytes.
    template, exported = _Layout(tiny_template), _Layout(tiny_gguf)

    def entries(layout):
        return [(key, raw) for key, raw in layout.metadata if key not in ("general.file_type", "general.alignment")]

    assert entries(exported) == entries(template)
    assert exported.tensor_names() == template.tensor_names()
    assert len(template.tensor_names()) == template.tensors > 0


def test_metadata_larger_than_the_first_read_is_read_on_and_a_truncated_file_is_one_line(
    tiny_template, tmp_path, monkeypatch
):
    whole = _Layout(tiny_template)
    monkeypatch.setattr(gguf_io, "_FIRST_READ", 4096)  # the vocabulary's strings cross many reads
    in_parts = _Layout(tiny_template)
    assert in_parts.metadata == whole.metadata and in_parts.data_offset == whole.data_offset
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_template.read_bytes()[: whole.data_offset // 2])  # ends inside the vocabulary
    with pytest.raises(SocraticError, match=r"cut\.gguf is truncated"):
        _Layout(cut)
