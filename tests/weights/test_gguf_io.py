"""GGUF conversions: what an export keeps of its template."""

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
