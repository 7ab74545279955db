"""GGUF <-> Hugging Face: the two conversions between llama.cpp's file format and a trainable folder.

- `convert_gguf_to_hf`: a pretrained GGUF from our catalogue (`socratic.models`) -> safetensors +
  tokenizer, so students train with `transformers`.
- `export_gguf`: a trained student folder -> a GGUF that llama.cpp runs (`LlamaCppEngine`), using the
  base model's GGUF as the template for metadata and tokenizer.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
from pathlib import Path

from socratic.errors import SocraticError

log = logging.getLogger(__name__)


def convert_gguf_to_hf(gguf: Path, out_dir: Path) -> None:
    """Write a GGUF model as safetensors + tokenizer that `from_pretrained(out_dir)` loads directly.

    transformers de-quantises GGUF weights to float32 but refuses to `save_pretrained` a model
    loaded that way, so the weights are moved into a plain model built from the same config.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.warning("converting %s to a Hugging Face folder (once; up to a minute or two)", gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model_config = loaded.config
    if hasattr(model_config, "quantization_config"):
        del model_config.quantization_config
    plain = AutoModelForCausalLM.from_config(model_config, dtype=torch.float32)
    result = plain.load_state_dict(loaded.state_dict(), strict=False)
    # Tied output embeddings are absent from the GGUF by design; anything else missing is a bug.
    missing = [k for k in result.missing_keys if k not in _tied_keys(plain)]
    assert not missing and not result.unexpected_keys, f"GGUF conversion mismatch: {missing} {result.unexpected_keys}"
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


GGUF_TYPES = ("f32", "bf16", "q8_0")


def export_gguf(student: Path, template: Path, out: Path, weights_type: str = "f32") -> Path:
    """Write a trained Hugging Face student as a GGUF that llama.cpp runs.

    The base model's GGUF is the template: its metadata (architecture, tokenizer, chat template) is
    copied and every tensor is replaced by the student's weight of the same role. This is the inverse
    of `convert_gguf_to_hf`, so it supports what that reads from our catalogue: `llama` (SmolLM2,
    Qwen-style rotary weights are permuted back the way llama.cpp expects) and `gemma3` (norm weights
    stored as 1 + w). `weights_type` f32 keeps llama.cpp's greedy outputs as close as possible to
    transformers'; bf16 and q8_0 store the matrices smaller (faster, slightly different outputs);
    vectors (norms) stay float32 either way.
    """
    import gguf
    import numpy as np
    from safetensors import safe_open

    reader = gguf.GGUFReader(str(template))
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    if arch not in ("llama", "gemma3"):
        raise SocraticError(f"exporting a {arch} model to GGUF is not supported (llama and gemma3 are)")
    blocks = int(reader.fields[f"{arch}.block_count"].contents())
    heads = int(reader.fields[f"{arch}.attention.head_count"].contents())
    kv_heads = int(reader.fields[f"{arch}.attention.head_count_kv"].contents())
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], blocks)
    weights = {}
    with safe_open(student / "model.safetensors", "pt") as loaded:
        for hf_name in loaded.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
            gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if gguf_name is None:
                raise SocraticError(f"{student}: no GGUF name for tensor {hf_name}")
            tensor = loaded.get_tensor(hf_name).float()
            if arch == "llama" and gguf_name.endswith(("attn_q.weight", "attn_k.weight")):
                tensor = _permute_rotary(tensor, heads if "attn_q" in gguf_name else kv_heads)
            if arch == "gemma3" and gguf_name.endswith("norm.weight"):
                tensor = tensor + 1
            weights[gguf_name] = tensor.numpy()
    expected = {t.name for t in reader.tensors}
    if not expected <= set(weights):
        raise SocraticError(f"{student} lacks tensors of its base model: {sorted(expected - set(weights))[:3]}")
    partial = out.with_name(out.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", "general.file_type"):
            continue
        kind = field.types[0]
        writer.add_key_value(key, field.contents(), kind, sub_type=field.types[-1] if len(field.types) > 1 else None)
    kinds = {"f32": None, "bf16": gguf.GGMLQuantizationType.BF16, "q8_0": gguf.GGMLQuantizationType.Q8_0}
    file_types = {"f32": "ALL_F32", "bf16": "MOSTLY_BF16", "q8_0": "MOSTLY_Q8_0"}
    writer.add_file_type(getattr(gguf.LlamaFileType, file_types[weights_type]))
    for tensor in reader.tensors:  # the template's order and set (tied output weights stay absent)
        data = np.ascontiguousarray(weights[tensor.name], dtype=np.float32)
        kind = kinds[weights_type]
        if kind is None or data.ndim < 2:
            writer.add_tensor(tensor.name, data)
        else:
            writer.add_tensor(tensor.name, gguf.quants.quantize(data, kind), raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(partial, out)
    return out


def with_metadata(source: Path, out: Path, strings: dict[str, str]) -> Path:
    """A copy of a GGUF with these string metadata values set (added, or replacing the ones it has).

    Written as raw bytes: the other metadata, the tensor descriptions and the tensor data are copied
    unparsed (gguf-py's reader builds an object per vocabulary entry: half a minute for SmolLM2's
    49,152 tokens on a busy machine). `socratic export` sets the chat template this way.
    """
    layout = _Layout(source)
    kept = [raw for key, raw in layout.metadata if key not in strings]
    added = [_gguf_string(k) + struct.pack("<I", _STRING) + _gguf_string(v) for k, v in strings.items()]
    header = struct.pack("<4sIQQ", b"GGUF", layout.version, layout.tensors, len(kept) + len(added))
    head = header + b"".join(kept + added) + layout.descriptions
    padding = b"\0" * (-len(head) % layout.alignment)  # tensor data starts aligned; its offsets are relative to it
    partial = out.with_name(out.name + ".partial")
    with open(source, "rb") as original, open(partial, "wb") as copy:
        copy.write(head + padding)
        original.seek(layout.data_offset)
        shutil.copyfileobj(original, copy, 1 << 24)
    os.replace(partial, out)
    return out


def gguf_strings(path: Path) -> dict[str, str]:
    """The string metadata of a GGUF (read without gguf-py's per-token objects)."""
    layout = _Layout(path)
    found = {}
    for key, raw in layout.metadata:
        offset = 8 + len(key.encode("utf-8"))
        if struct.unpack_from("<I", raw, offset)[0] == _STRING:
            found[key] = raw[offset + 12 :].decode("utf-8")
    return found


_STRING, _ARRAY = 8, 9
_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value type -> bytes


def _gguf_string(value: str) -> bytes:
    raw = value.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


class _Layout:
    """Where the parts of a (little-endian, version 2 or 3) GGUF file lie: each metadata entry as raw
    bytes by key, the tensor descriptions as raw bytes, the alignment and the start of tensor data."""

    def __init__(self, path: Path):
        with open(path, "rb") as file:
            head = file.read(1 << 20)
            magic, self.version, self.tensors, entries = struct.unpack_from("<4sIQQ", head)
            if magic != b"GGUF" or self.version not in (2, 3):
                raise SocraticError(f"{path} is not a GGUF file of version 2 or 3")
            while True:  # the metadata and descriptions fit a first read unless the vocabulary is huge
                try:
                    self._parse(head, entries)
                    break
                except struct.error:
                    more = file.read(len(head))
                    if not more:
                        raise SocraticError(f"{path} is truncated") from None
                    head += more

    def _parse(self, head: bytes, entries: int) -> None:
        position = 24
        self.metadata: list[tuple[str, bytes]] = []
        self.alignment = 32
        for _ in range(entries):
            start = position
            key, position = self._string(head, position)
            (kind,) = struct.unpack_from("<I", head, position)
            position = self._value(head, position + 4, kind)
            self.metadata.append((key, head[start:position]))
            if key == "general.alignment":
                (self.alignment,) = struct.unpack_from("<I", head, position - 4)
        start = position
        for _ in range(self.tensors):
            _, position = self._string(head, position)
            (dims,) = struct.unpack_from("<I", head, position)
            position += 4 + 8 * dims + 4 + 8  # dimensions, type, offset
        struct.unpack_from("<B", head, position - 1)  # the descriptions end inside what was read
        self.descriptions = head[start:position]
        self.data_offset = position + (-position % self.alignment)

    @staticmethod
    def _string(head: bytes, position: int) -> tuple[str, int]:
        (length,) = struct.unpack_from("<Q", head, position)
        end = position + 8 + length
        if end > len(head):
            raise struct.error("past the end of what was read")
        return head[position + 8 : end].decode("utf-8"), end

    def _value(self, head: bytes, position: int, kind: int) -> int:
        if kind == _STRING:
            return self._string(head, position)[1]
        if kind == _ARRAY:
            item, count = struct.unpack_from("<IQ", head, position)
            position += 12
            if item in _SCALAR_SIZES:
                return position + count * _SCALAR_SIZES[item]
            for _ in range(count):
                position = self._value(head, position, item)
            return position
        return position + _SCALAR_SIZES[kind]


def _permute_rotary(weight, heads: int):
    """Hugging Face's rotary layout -> llama.cpp's (interleaved pairs), as llama.cpp's converter does."""
    return (
        weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


def _tied_keys(model: object) -> set[str]:
    tied = getattr(model, "_tied_weights_keys", None) or {}
    return set(tied) if not isinstance(tied, dict) else set(tied.keys())
