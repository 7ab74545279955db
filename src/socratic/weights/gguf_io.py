"""GGUF <-> Hugging Face: the two conversions between llama.cpp's file format and a trainable folder.

- `convert_gguf_to_hf`: a pretrained GGUF from our catalogue (`socratic.weights.models`) -> safetensors +
  tokenizer, so students train with `transformers`.
- `export_gguf`: a trained student folder -> a GGUF that llama.cpp runs (`LlamaCppEngine`), using the
  base model's GGUF as the template for metadata and tokenizer.
- `export_gguf_from_hf`: the same for a student of a base with no GGUF (a hub id or a folder of your
  own): metadata from its config.json, tokenizer from its tokenizer.json, for the families llama.cpp
  runs that we test: GPT-2 (the paper's students), Qwen2 and Llama, on byte-level BPE tokenizers.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from socratic.core import console
from socratic.core.errors import SocraticError
from socratic.core.jsonl import read_state

log = logging.getLogger(__name__)


def convert_gguf_to_hf(gguf: Path, out_dir: Path) -> None:
    """Write a GGUF model as safetensors + tokenizer that `from_pretrained(out_dir)` loads directly.

    transformers de-quantises GGUF weights to float32 but refuses to `save_pretrained` a model
    loaded that way, so the weights are moved into a plain model built from the same config.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.warning("converting %s to a Hugging Face folder (once; up to a minute or two)", gguf.name)
    console.quiet_bar_of("transformers.modeling_gguf_pytorch_utils")
    with _read_once():
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


@contextlib.contextmanager
def _read_once() -> Iterator[None]:
    """Inside the block, gguf-py's file reader and tensor-name table are made once per argument.

    transformers opens the GGUF three times (config, tokenizer, weights), and each `GGUFReader` parses the
    whole vocabulary again (SmolLM2's 49,152 words); it also rebuilds llama.cpp's table of tensor names
    for every tensor it loads (~400 times). Both are read-only (the reader is a memory map), so one of
    each serves all calls: SmolLM2-135M converted in 12.0 s instead of 21.2, to the same weights and
    tokenizer. transformers imports them from `gguf` at each call, which is where they are swapped."""
    import gguf as gguf_py

    reader, name_map = gguf_py.GGUFReader, gguf_py.get_tensor_name_map
    gguf_py.GGUFReader = functools.cache(reader)
    gguf_py.get_tensor_name_map = functools.cache(name_map)
    try:
        yield
    finally:
        gguf_py.GGUFReader, gguf_py.get_tensor_name_map = reader, name_map


GGUF_TYPES = ("f32", "f16", "bf16", "q8_0")


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
    from safetensors import safe_open

    # The template read as raw bytes: gguf-py's reader makes objects for each of the 49,152 vocabulary
    # entries, 3.8 of the 4.6 s an export of SmolLM2-135M took (five exports in the default demo).
    layout = _Layout(template)
    fields = layout.fields()
    arch = fields["general.architecture"].value
    if arch not in ("llama", "gemma3"):
        raise SocraticError(f"exporting a {arch} model to GGUF is not supported (llama and gemma3 are)")
    blocks = int(fields[f"{arch}.block_count"].value)
    heads = int(fields[f"{arch}.attention.head_count"].value)
    kv_heads = int(fields[f"{arch}.attention.head_count_kv"].value)
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
    expected = layout.tensor_names()
    if not set(expected) <= set(weights):
        raise SocraticError(f"{student} lacks tensors of its base model: {sorted(set(expected) - set(weights))[:3]}")

    def metadata(writer: Any) -> None:  # the template's, but for what the writer sets itself
        for key, field in fields.items():
            if key in ("general.architecture", "general.file_type"):
                continue
            item = gguf.GGUFValueType(field.item) if field.item is not None else None
            writer.add_key_value(key, field.value, gguf.GGUFValueType(field.kind), sub_type=item)

    # the template's order and set of tensors (tied output weights stay absent)
    return _write_gguf(out, arch, metadata, {name: weights[name] for name in expected}, weights_type)


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


def gguf_fields(path: Path) -> dict[str, _Field]:
    """Every metadata entry of a GGUF by key, decoded (without gguf-py's per-token objects), as
    gguf-py's writer takes them back: `writer.add_key_value(key, field.value, kind, sub_type=item)`."""
    return _Layout(path).fields()


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
_LENGTH = struct.Struct("<Q")  # a GGUF string's byte count, before its bytes
_FIRST_READ = 1 << 22  # SmolLM2's metadata and tensor descriptions are 1.7 MiB: one read, one parse
_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value type -> bytes
_SCALAR_FORMATS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


class _Field(NamedTuple):
    """One metadata value: its GGUF type, its items' type if it is an array, and the value (a list for
    an array), as gguf-py's writer takes them back."""

    kind: int
    item: int | None
    value: Any


def _decoded(raw: bytes) -> _Field:
    """A raw metadata entry (`_Layout.metadata`) as a `_Field`."""
    _, position = _Layout._string(raw, 0)
    (kind,) = struct.unpack_from("<I", raw, position)
    position += 4
    if kind == _STRING:
        return _Field(kind, None, _Layout._string(raw, position)[0])
    if kind != _ARRAY:
        return _Field(kind, None, struct.unpack_from("<" + _SCALAR_FORMATS[kind], raw, position)[0])
    item, count = struct.unpack_from("<IQ", raw, position)
    position += 12
    if item in _SCALAR_FORMATS:
        return _Field(kind, item, list(struct.unpack_from(f"<{count}{_SCALAR_FORMATS[item]}", raw, position)))
    if item != _STRING:
        raise SocraticError("a GGUF metadata array of arrays is not supported")
    strings = []
    for _ in range(count):
        string, position = _Layout._string(raw, position)
        strings.append(string)
    return _Field(kind, item, strings)


def _gguf_string(value: str) -> bytes:
    raw = value.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


class _Layout:
    """Where the parts of a (little-endian, version 2 or 3) GGUF file lie: each metadata entry as raw
    bytes by key, the tensor descriptions as raw bytes, the alignment and the start of tensor data."""

    def __init__(self, path: Path):
        with open(path, "rb") as file:
            head = file.read(_FIRST_READ)
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

    def fields(self) -> dict[str, _Field]:
        """The metadata entries by key, decoded."""
        return {key: _decoded(raw) for key, raw in self.metadata}

    def tensor_names(self) -> list[str]:
        """The tensors' names, in the file's order."""
        names, position = [], 0
        for _ in range(self.tensors):
            name, position = self._string(self.descriptions, position)
            (dims,) = struct.unpack_from("<I", self.descriptions, position)
            position += 4 + 8 * dims + 4 + 8
            names.append(name)
        return names

    @staticmethod
    def _string(head: bytes, position: int) -> tuple[str, int]:
        (length,) = struct.unpack_from("<Q", head, position)
        end = position + 8 + length
        if end > len(head):
            raise struct.error("past the end of what was read")
        return head[position + 8 : end].decode("utf-8"), end

    def _value(self, head: bytes, position: int, kind: int) -> int:
        if kind == _STRING:
            return self._past_strings(head, position, 1)
        if kind == _ARRAY:
            item, count = struct.unpack_from("<IQ", head, position)
            position += 12
            if item in _SCALAR_SIZES:
                return position + count * _SCALAR_SIZES[item]
            if item == _STRING:
                return self._past_strings(head, position, count)
            for _ in range(count):
                position = self._value(head, position, item)
            return position
        return position + _SCALAR_SIZES[kind]

    @staticmethod
    def _past_strings(head: bytes, position: int, count: int) -> int:
        """The position after `count` strings from `position`, read by their lengths alone: a vocabulary's
        strings are only skipped here (decoding each of SmolLM2's ~100,000 tokens and merges made a
        template's layout take 0.44 s)."""
        length = _LENGTH.unpack_from
        for _ in range(count):
            position += 8 + length(head, position)[0]
        if position > len(head):
            raise struct.error("past the end of what was read")
        return position


def _permute_rotary(weight, heads: int):
    """Hugging Face's rotary layout -> llama.cpp's (interleaved pairs), as llama.cpp's converter does."""
    return (
        weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


def _tied_keys(model: object) -> set[str]:
    tied = getattr(model, "_tied_weights_keys", None) or {}
    return set(tied) if not isinstance(tied, dict) else set(tied.keys())


# --- without a template: config.json + tokenizer.json -> GGUF ------------------------------------------

# The families `export_gguf_from_hf` writes: transformers' model_type -> llama.cpp's architecture.
HF_ARCHITECTURES = {"gpt2": "gpt2", "qwen2": "qwen2", "llama": "llama"}

# llama.cpp's name for a byte-level BPE tokenizer's pre-tokenizer (how text is split before BPE), keyed
# by what tokenizer.json says. llama.cpp's converter recognises them by hashing a tokenization; these
# are the ones of GPT-2, SmolLM and Qwen2 / Llama 3, whose pre-tokenizers the keys spell out.
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_LLAMA3_SPLIT = _QWEN2_SPLIT.replace(r"\p{N}|", r"\p{N}{1,3}|", 1)


def _pre_tokenizer_name(tokenizer_json: dict) -> str | None:
    pre = tokenizer_json.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    kinds = [p.get("type") for p in parts]
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits") and parts[1].get("use_regex", True):
        return "smollm"
    if kinds == ["Split", "ByteLevel"]:
        regex = parts[0].get("pattern", {}).get("Regex")
        return {_QWEN2_SPLIT: "qwen2", _LLAMA3_SPLIT: "llama-bpe"}.get(regex)
    return None


def export_gguf_from_hf(student: Path, out: Path, weights_type: str = "f32") -> Path:
    """Write a Hugging Face student (GPT-2, Qwen2 or Llama; byte-level BPE tokenizer) as a GGUF for llama.cpp.

    Follows llama.cpp's own converter (convert_hf_to_gguf.py) for these families: GPT-2's Conv1D weights
    are transposed to the usual (out, in) layout and its tied output layer written out; Llama's rotary
    weights are permuted; Qwen2's are not; a tied output layer is otherwise left out (llama.cpp reuses
    the token embeddings).
    """

    from safetensors import safe_open
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(student)
    arch = HF_ARCHITECTURES.get(config.model_type)
    if arch is None:
        raise SocraticError(
            f"{student}: exporting a {config.model_type} model to GGUF without a base model GGUF is not supported "
            f"({', '.join(HF_ARCHITECTURES)} are); use --engine hf"
        )
    tokenizer_file = student / "tokenizer.json"
    tokenizer_json = read_state(tokenizer_file, "copy the student folder again") if tokenizer_file.is_file() else {}
    model = tokenizer_json.get("model", {})
    pre = _pre_tokenizer_name(tokenizer_json)
    if model.get("type") != "BPE" or model.get("byte_fallback") or pre is None:
        raise SocraticError(
            f"{student}: exporting this tokenizer to GGUF is not supported (byte-level BPE of GPT-2, SmolLM, Qwen2 "
            "or Llama 3 is); use --engine hf"
        )
    blocks = config.num_hidden_layers
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    weights = {}
    with safe_open(student / "model.safetensors", "pt") as loaded:
        for hf_name in loaded.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
            if hf_name.endswith((".attn.bias", ".attn.masked_bias")):  # GPT-2's causal-mask buffers in old files
                continue
            weights[hf_name] = loaded.get_tensor(hf_name).float()
    tensors = _gguf_tensors(arch, weights, blocks, heads, kv_heads, student)

    def metadata(writer: Any) -> None:
        writer.add_name(student.name)
        writer.add_block_count(blocks)
        writer.add_context_length(config.max_position_embeddings)
        writer.add_embedding_length(config.hidden_size)
        writer.add_head_count(heads)
        if arch == "gpt2":
            writer.add_feed_forward_length(config.n_inner or 4 * config.hidden_size)
            writer.add_layer_norm_eps(config.layer_norm_epsilon)
        else:
            rope = getattr(config, "rope_parameters", None) or {"rope_theta": config.rope_theta}
            if rope.get("rope_type", "default") != "default":
                raise SocraticError(f"{student}: rope scaling {rope['rope_type']} is not exported; use --engine hf")
            writer.add_feed_forward_length(config.intermediate_size)
            writer.add_head_count_kv(kv_heads)
            writer.add_rope_freq_base(float(rope["rope_theta"]))
            writer.add_layer_norm_rms_eps(config.rms_norm_eps)
            writer.add_rope_dimension_count(getattr(config, "head_dim", None) or config.hidden_size // heads)
        _add_tokenizer(writer, student, tokenizer_json, pre, config.vocab_size)

    return _write_gguf(out, arch, metadata, tensors, weights_type)


def _gguf_tensors(arch: str, weights: dict, blocks: int, heads: int, kv_heads: int, student: Path) -> dict:
    """The student's weights under llama.cpp's names, in llama.cpp's layout for `arch`."""
    import gguf

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], blocks)
    tensors = {}
    for hf_name, tensor in weights.items():
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise SocraticError(f"{student}: no GGUF name for tensor {hf_name}")
        if arch == "gpt2" and hf_name.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight")):
            tensor = tensor.T  # Conv1D stores (in, out)
        if arch == "llama" and gguf_name.endswith(("attn_q.weight", "attn_k.weight")):
            tensor = _permute_rotary(tensor, heads if "attn_q" in gguf_name else kv_heads)
        tensors[gguf_name] = tensor.contiguous().numpy()
    if arch == "gpt2" and "output.weight" not in tensors:  # tied to the token embeddings, written twice
        tensors["output.weight"] = tensors["token_embd.weight"]
    return tensors


def _add_tokenizer(writer: Any, student: Path, tokenizer_json: dict, pre: str, vocab_size: int) -> None:
    """A byte-level BPE tokenizer as llama.cpp reads it: tokens by id (padded to the model's vocabulary),
    their types (added special tokens are control tokens), merges and special ids, chat template."""
    import gguf

    vocab = dict(tokenizer_json["model"]["vocab"])
    added = {t["id"]: t for t in tokenizer_json.get("added_tokens", [])}
    vocab.update({t["content"]: i for i, t in added.items()})
    by_id = {i: text for text, i in vocab.items()}
    tokens, types = [], []
    for i in range(max(vocab_size, len(by_id))):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.CONTROL if added[i].get("special") else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    gguf.SpecialVocab(student, load_merges=True, n_vocab=len(tokens)).add_to_gguf(writer, quiet=True)


def _write_gguf(out: Path, arch: str, metadata: Any, tensors: dict, weights_type: str) -> Path:
    """`tensors` (name -> float32 array) and the metadata `metadata(writer)` adds, as a GGUF written
    under a temporary name and renamed when complete; matrices stored as `weights_type`."""
    import gguf
    import numpy as np

    kinds = {
        "f32": None,
        "f16": gguf.GGMLQuantizationType.F16,
        "bf16": gguf.GGMLQuantizationType.BF16,
        "q8_0": gguf.GGMLQuantizationType.Q8_0,
    }
    file_types = {"f32": "ALL_F32", "f16": "MOSTLY_F16", "bf16": "MOSTLY_BF16", "q8_0": "MOSTLY_Q8_0"}
    partial = out.with_name(out.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), arch)
    metadata(writer)
    writer.add_file_type(getattr(gguf.LlamaFileType, file_types[weights_type]))
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype=np.float32)
        kind = kinds[weights_type]
        if kind is None or data.ndim < 2 or name == "position_embd.weight":
            writer.add_tensor(name, data)
        else:
            writer.add_tensor(name, gguf.quants.quantize(data, kind), raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(partial, out)
    return out
