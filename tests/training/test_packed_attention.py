"""Per-example attention on packed rows: the block mask's values and gradients, at a fraction of its work,
switched on for training only, and training with it learns exactly what training with the mask learns."""

import json

import pytest
import torch

from socratic.training.packed_attention import NAME, example_starts, training_attention
from socratic.training.train import run_train
from socratic.training.trainer import attends_per_example
from tests.training.runs import first_batch, losses_of, quick


def logits_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    out = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
    (out.float() ** 2).mean().backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_per_example_attention_gives_the_block_masks_logits_and_gradients(tiny_model, chains_file, tmp_path):
    from transformers import AutoModelForCausalLM

    _, _, _, batch = first_batch(tiny_model, chains_file, tmp_path)
    assert (batch["position_ids"][0] == 0).sum() > 1, "the batch packs several examples into one sequence"
    model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation="sdpa")  # GQA: 4 heads, 2 kv
    masked, masked_grads = logits_and_grads(model, batch)
    with training_attention(model, True):
        assert model.config._attn_implementation == NAME
        ours, our_grads = logits_and_grads(model, batch)
    torch.testing.assert_close(ours, masked, atol=1e-5, rtol=1e-5)
    assert masked_grads.keys() == our_grads.keys()
    for name, grad in masked_grads.items():
        torch.testing.assert_close(our_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_the_model_attends_with_sdpa_again_after_training_even_when_it_failed(tiny_model):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation="sdpa")
    with pytest.raises(RuntimeError), training_attention(model, True):
        raise RuntimeError("training failed")
    assert model.config._attn_implementation == "sdpa"
    with training_attention(model, False):
        assert model.config._attn_implementation == "sdpa"


def test_examples_start_where_the_position_ids_restart():
    positions = torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3]])
    assert example_starts(positions, 0, 9) == [0, 3, 5, 9]
    assert example_starts(None, 0, 4) == [0, 4]  # one unpacked sequence
    assert example_starts(torch.tensor([[5, 6, 0, 1]]), 0, 4) == [0, 2, 4]  # a row that starts mid-example


def test_padding_at_the_end_of_a_row_is_one_piece():
    """TRL pads a padding-free batch with position id 0 (for `--torch-compile`): one piece, not one a token."""
    assert example_starts(torch.tensor([[0, 1, 2, 0, 1, 0, 0, 0, 0]]), 0, 9) == [0, 3, 5, 9]
    assert example_starts(torch.tensor([[0, 1, 0, 0]]), 0, 4) == [0, 2, 4]  # a 1-token piece, then padding
    assert example_starts(torch.tensor([[0, 0, 0]]), 0, 3) == [0, 1, 3]
    assert example_starts(torch.tensor([[0]]), 0, 1) == [0, 1]


def test_a_llama_keeps_packed_examples_apart_with_it(tiny_model):
    from transformers import AutoModelForCausalLM

    assert attends_per_example(AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation="sdpa"), "tiny")


def test_training_with_it_follows_the_block_masks_losses_step_for_step(tiny_model, chains_file, tmp_path):
    losses = {}
    for per_example in (False, True):
        out = tmp_path / str(per_example)
        run_train(quick(tiny_model, chains_file, out, max_steps=4, packed_attention=per_example, bf16=False))
        losses[per_example] = losses_of(out)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["per_example_attention"] is per_example
    assert len(losses[True]) == 4
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)
