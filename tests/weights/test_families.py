"""Model families other than Llama through every stage: GPT-2 (the paper's students: learned positions,
Conv1D weights) and Qwen2 (biases on Q/K/V), as tiny random models on SmolLM2's first words. Packed
training rows keep examples apart (or packing is switched off, warned), every mode trains, `solve`
runs on the hf engine and, after the GGUF export, on llama.cpp, whose logits match transformers'."""

import itertools
import json

import numpy as np
import pytest
import torch

from socratic.commands.solve import SolveConfig, run_solve
from socratic.core.config import build
from socratic.core.jsonl import read_jsonl
from socratic.core.records import Prediction
from socratic.text import formats
from socratic.training.data import load_pieces, tokenize_pieces
from socratic.training.train import run_train
from socratic.training.trainer import packed_logits_match
from socratic.weights.student_folder import student_gguf
from tests.training.runs import check_trained_student, first_batch, losses_of, quick

PROMPT = formats.problem_prompt("Natalia sold clips to 48 of her friends in April. How many?") + "Q:"


@pytest.mark.slow
def test_the_trainers_packed_rows_give_each_example_its_logits_alone(tiny_family, chains_file, tmp_path):
    from transformers import AutoModelForCausalLM

    _, _, _, batch = first_batch(tiny_family, chains_file, tmp_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_family, attn_implementation="sdpa").eval()
    assert_packed_equals_alone(model, batch["input_ids"], batch["position_ids"])


def test_packed_logits_equal_each_example_alone(tiny_family, chains_file):
    # Fast twin of the test above: three chains packed by hand as the trainer packs them (one row, each
    # example's own position ids from 0, no attention mask).
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_family)
    pieces, _ = load_pieces(quick(tiny_family, chains_file, "unused"), "unified")
    examples = [tokenize_pieces(tokenizer, p)["input_ids"][:80] for p in pieces[:3]]
    ids = torch.tensor([[t for e in examples for t in e]])
    positions = torch.cat([torch.arange(len(e)) for e in examples])[None]
    model = AutoModelForCausalLM.from_pretrained(tiny_family, attn_implementation="sdpa").eval()
    assert_packed_equals_alone(model, ids, positions)
    assert packed_logits_match(model)  # what train checks before packing


def assert_packed_equals_alone(model, ids, positions):
    starts = [*torch.nonzero(positions[0] == 0).flatten().tolist(), ids.shape[1]]
    assert len(starts) > 2  # several chains share the packed row
    with torch.no_grad():
        packed = model(input_ids=ids, position_ids=positions, use_cache=False).logits[0]
        for start, end in itertools.pairwise(starts):
            alone = model(input_ids=ids[:, start:end]).logits[0]
            torch.testing.assert_close(packed[start:end], alone, atol=1e-4, rtol=1e-4)


def test_packing_is_switched_off_with_a_warning_when_attention_mixes_examples(
    tiny_model,
    chains_file,
    tmp_path,
    monkeypatch,
    caplog,
):
    # Fault injection: transformers no longer finds the packed sequences in the position ids, as with a
    # model whose attention ignores them; the examples of a row would then attend to each other.
    from transformers import AutoModelForCausalLM, masking_utils

    monkeypatch.setattr(masking_utils, "find_packed_sequence_indices", lambda *args, **kwargs: None)
    assert not packed_logits_match(AutoModelForCausalLM.from_pretrained(tiny_model))
    out = run_train(quick(tiny_model, chains_file, tmp_path / "s", max_steps=1, max_length=256, threads=1))
    assert "its attention does not keep packed examples apart, so packing is off" in caplog.text
    assert json.loads((out / "manifest.json").read_text())["packed"] is False


@pytest.mark.slow
def test_each_family_trains_and_solves_on_both_engines(tiny_family, chains_file, tmp_path):
    check_trains_and_solves(tiny_family, chains_file, tmp_path)


def test_gpt2_trains_and_solves_on_both_engines(tiny_gpt2, chains_file, tmp_path):
    # Fast twin of the test above, for the paper's family only.
    check_trains_and_solves(tiny_gpt2, chains_file, tmp_path)


def check_trains_and_solves(model, chains_file, tmp_path):
    """A short training, the student checked, solved on the hf and llama.cpp engines, and llama.cpp's
    logits on its GGUF export compared with transformers'."""
    out = run_train(quick(model, chains_file, tmp_path / "s", max_steps=2, max_length=256, threads=1))
    assert json.loads((out / "manifest.json").read_text())["packed"] is True
    check_trained_student(out, model, "unified")
    for engine in ("hf", "llamacpp"):
        predictions = tmp_path / f"{engine}.jsonl"
        values = dict(method="unified", model=str(out), limit=2, max_new_tokens=6, engine=engine, threads=1)
        run_solve(build(SolveConfig, {**values, "out": str(predictions)}))
        assert [p.problem_id for p in read_jsonl(predictions, Prediction)] == ["gsm8k/test/0", "gsm8k/test/1"]
    assert_llamacpp_agrees(out, student_gguf(out))


def assert_llamacpp_agrees(folder, gguf):
    """llama.cpp on the exported GGUF tokenizes as transformers does and computes the same logits."""
    from llama_cpp import Llama
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from socratic.llamacpp.buffers import without_repacking

    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer(PROMPT).input_ids
    with without_repacking():
        llama = Llama(model_path=str(gguf), n_ctx=256, n_threads=1, logits_all=True, verbose=False)
    try:
        assert llama.tokenize(PROMPT.encode(), add_bos=False) == ids
        llama.eval(ids)
        theirs = np.array(llama.scores[: len(ids)])
    finally:
        llama.close()
    with torch.no_grad():
        ours = AutoModelForCausalLM.from_pretrained(folder)(torch.tensor([ids])).logits[0].numpy()
    # float32 on both sides; a wrong layout (an untransposed Conv1D, a permuted rotary) is off by ~the logits
    assert np.abs(theirs - ours).max() < 1e-3 * (1 + np.abs(ours).max())


@pytest.mark.slow
@pytest.mark.parametrize("mode", formats.ROLES)
def test_every_mode_learns_in_each_family(tiny_family, chains_file, tmp_path, mode):
    out = run_train(quick(tiny_family, chains_file, tmp_path / mode, method=mode))
    losses = losses_of(out)
    # Learning, if slower than the tiny Llama (Qwen2 measured at 0.86: 10.84 -> 8.97 in 12 steps)
    assert len(losses) == 12 and sum(losses[-3:]) < 0.9 * sum(losses[:3]), losses
    check_trained_student(out, tiny_family, mode)
