"""The trainer (`training.trainer`): the loss is on the completion tokens alone and is TRL's, packed
examples do not see each other, the decision weight and the repeat unlikelihood train what they say;
and its hardware switches."""

import functools
import itertools

import pytest
import torch

from socratic.core.errors import SocraticError
from socratic.tasks import gsm8k
from socratic.text import formats
from socratic.training import trainer
from socratic.training.config import TrainConfig
from socratic.training.data import tokenize_pieces
from socratic.training.train import run_train, uses_trl_loss
from socratic.training.trainer import (
    completion_loss,
    copy_penalty,
    copy_targets,
    trained_positions,
    trainer_class,
)
from socratic.weights import models
from socratic.weights.student_folder import read_info
from tests.training.runs import first_batch, quick


@pytest.mark.parametrize("native", [True, False])
def test_bf16_follows_the_hardware_unless_asked_and_emulated_bf16_is_warned_about(native, monkeypatch, caplog):
    monkeypatch.setattr(trainer, "native_bf16", lambda gpu: native)
    assert trainer.training_bf16(None, gpu=False) is native
    assert trainer.training_bf16(False, gpu=False) is False
    assert not caplog.records
    assert trainer.training_bf16(True, gpu=False) is True  # honoured either way: the user asked
    assert ("emulated here" in caplog.text) is not native


@pytest.mark.parametrize("mode", ["unified", "qg", "qa"])
def test_loss_is_on_completion_tokens_only(tiny_model, chains_file, tmp_path, mode):
    pieces, tokenizer, _, batch = first_batch(tiny_model, chains_file, tmp_path, mode)
    ids, labels, positions = batch["input_ids"][0], batch["labels"][0], batch["position_ids"][0]
    starts = [*torch.nonzero(positions == 0).flatten().tolist(), len(ids)]
    # Per chain: the trained pieces (completion; QG's subquestion lines and end marker; QA's solution
    # lines) and the rest (prompt and history).
    trained_text = {"".join(t for t, flag in p if flag) + (tokenizer.eos_token if p[-1][1] else "") for p in pieces}
    masked_text = {"".join(t for t, flag in p if not flag) for p in pieces}
    assert len(starts) > 2  # several chains share the packed row
    for start, end in itertools.pairwise(starts):
        trained = [t for t, label in zip(ids[start:end], labels[start:end], strict=True) if label != -100]
        masked = [t for t, label in zip(ids[start:end], labels[start:end], strict=True) if label == -100]
        assert tokenizer.decode(trained) in trained_text
        assert tokenizer.decode(masked) in masked_text


def test_packed_examples_do_not_see_each_other(tiny_model, chains_file, tmp_path):
    from transformers import AutoModelForCausalLM

    _, _, _, batch = first_batch(tiny_model, chains_file, tmp_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation="sdpa").eval()
    ids, positions = batch["input_ids"], batch["position_ids"]
    with torch.no_grad():
        # As in training (TRL passes use_cache=False): with no cache and no attention mask, transformers
        # reads the sequence boundaries from the position ids and masks attention across them.
        packed = model(input_ids=ids, position_ids=positions, use_cache=False).logits[0]
        starts = [*torch.nonzero(positions[0] == 0).flatten().tolist(), ids.shape[1]]
        for start, end in itertools.pairwise(starts):
            alone = model(input_ids=ids[:, start:end]).logits[0]
            torch.testing.assert_close(packed[start:end], alone, atol=1e-4, rtol=1e-4)


def test_the_decision_weight_counts_the_first_token_of_each_trained_line_that_many_times():
    from transformers.loss.loss_utils import ForCausalLMLoss

    torch.manual_seed(0)
    logits = torch.randn(2, 9, 11)
    # Two rows: trained runs at 2-3 and 6-7, and at 1-4; position 0 is a prompt token.
    labels = torch.tensor([[5, 1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6, 7, 8, 9]])
    trained = torch.tensor([[0, 0, 1, 1, 0, 0, 1, 1, 0], [0, 1, 1, 1, 1, 0, 0, 0, 0]]).bool()
    labels = labels.masked_fill(~trained, -100)
    keep = trained_positions(labels)
    assert keep.tolist() == [0, 1, 2, 3, 5, 6]  # the positions whose next token is trained in some row
    plain = completion_loss(1.0)(logits[:, keep], labels, keep)
    assert torch.allclose(plain, ForCausalLMLoss(logits, labels, vocab_size=11))  # the trainer's own loss
    assert torch.allclose(completion_loss(1.0)(logits, labels), plain)  # every position's logits: the same
    per_token = torch.nn.functional.cross_entropy(
        logits[:, :-1].transpose(1, 2), labels[:, 1:].clamp(min=0), reduction="none"
    )
    firsts = per_token[0, 1] + per_token[0, 5] + per_token[1, 0]  # the tokens at 2, 6 and 1
    weighted = completion_loss(4.0)(logits[:, keep], labels, keep, num_items_in_batch=torch.tensor(8))
    assert torch.allclose(weighted, (per_token[labels[:, 1:] != -100].sum() + 3 * firsts) / 8)


@pytest.mark.parametrize("mode", ["qg", "unified"])
def test_the_trainers_loss_is_trls_on_a_packed_batch(tiny_model, chains_file, tmp_path, mode):
    from trl import SFTTrainer

    _, _, trainer, batch = first_batch(tiny_model, chains_file, tmp_path, mode=mode)
    assert "position_ids" in batch  # packed rows, no attention mask
    assert (batch["labels"] == -100).any(), "prompt tokens are not trained: their logits are left out"
    with torch.no_grad():
        trl_loss = SFTTrainer.compute_loss(trainer, trainer.model, dict(batch))
        ours = trainer_class(SFTTrainer, 1.0).compute_loss(trainer, trainer.model, dict(batch))
    assert torch.allclose(trl_loss, ours, rtol=1e-4), (trl_loss, ours)


def test_copy_targets_are_where_a_line_parts_from_an_earlier_line_of_its_example():
    x = -100
    # One example: lines at 1-3, 5-7 and 9-11; the second copies the first for two tokens, the third
    # parts from both at once; 13-14 and 16-17 are two one-line examples (starting at 12 and 15).
    row = [x, 7, 8, 9, x, 7, 8, 4, x, 6, 8, 9, x, 7, 5, x, 7, 8]
    assert copy_targets(row[:4]) == [], "no earlier line: nothing to copy"
    assert copy_targets(row[:12]) == [(7, 9), (9, 7)]  # the second line's third token; the third's first
    assert copy_targets(row, starts=[0, 12, 15]) == [(7, 9), (9, 7)], "never across packed examples"
    assert copy_targets([x, 7, 8, x, 7, 8, 9]) == [], "a line that goes on past an earlier one copies nothing"


def test_the_repeat_unlikelihood_is_zero_without_an_earlier_line_and_pushes_the_copy_down_otherwise():
    torch.manual_seed(0)
    x = -100
    one_line = torch.tensor([[x, 1, 2, 3, x, x, x, x]])
    two_lines = torch.tensor([[x, 1, 2, 3, x, 1, 4, 3]])  # the second line parts from the first at 6: 4, not 2
    for labels in (one_line, two_lines):
        logits = torch.randn(1, 8, 11, requires_grad=True)
        keep = trained_positions(labels)
        plain = completion_loss(1.0)(logits[:, keep], labels, keep)
        with_term = completion_loss(1.0, repeat_unlikelihood=2.0)(logits[:, keep], labels, keep)
        if labels is one_line:
            assert torch.equal(with_term, plain) and copy_penalty(logits[:, keep], labels, keep).item() == 0
            continue
        p = torch.softmax(logits[0, 5], -1)[2]  # at position 5, the chance of the first line's 2 again
        trained = (labels[:, 1:] != x).sum()
        assert torch.allclose(with_term, plain + 2.0 * -torch.log1p(-p) / trained)
        (with_term - plain).backward()
        grad = logits.grad[0, 5]
        assert grad[2] > 0 and grad.abs().sum() > 0, "descending it lowers the copying token's logit"
        assert logits.grad[0, [0, 1, 2, 3, 4, 6]].abs().sum() == 0, "the term reads that position alone"


def test_a_qg_line_of_a_real_chain_is_penalised_where_it_would_repeat_the_subquestion_before():
    """On SmolLM2's tokenizer and a GSM8K chain as QG trains on it: one copy target per later line and
    earlier line, each a token of the earlier line where it is not the later line's token there."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(models.resolve("smollm2-135m"))
    problem = gsm8k.load("train")[0]
    pieces = formats.segments("qg", problem.question, problem.human_steps, problem.answer)
    encoded = tokenize_pieces(tokenizer, pieces)
    ids = encoded["input_ids"]
    labels = [t if trained else -100 for t, trained in zip(ids, encoded["completion_mask"], strict=True)]
    lines = len(problem.human_steps) + 1  # the subquestions and the end marker
    targets = copy_targets(labels)
    assert 0 < len(targets) <= lines * (lines - 1) // 2
    assert all(labels[position] != token and token in labels[:position] for position, token in targets)


def test_a_qg_trains_with_the_repeat_unlikelihood_and_records_it(tiny_model, chains_file, tmp_path):
    from trl import SFTTrainer

    _, _, trainer, batch = first_batch(tiny_model, chains_file, tmp_path, mode="qg")
    with torch.no_grad():
        plain = trainer_class(SFTTrainer).compute_loss(trainer, trainer.model, dict(batch))
        penalised = trainer_class(SFTTrainer, 1.0, 1.0).compute_loss(trainer, trainer.model, dict(batch))
    assert penalised > plain, "the packed batch's later QG lines have copy targets"
    out = tmp_path / "qg"
    quick_qg = functools.partial(quick, tiny_model, chains_file, out, method="qg", max_length=256, threads=1)
    run_train(quick_qg(max_steps=2, save_steps=1, repeat_unlikelihood=0.5))
    assert read_info(out).loss == {"repeat_unlikelihood": 0.5}
    assert read_info(out).trained_for["max_steps"] == 2
    for finished in ("socratic.json", "model.safetensors"):  # as if killed after its checkpoints
        (out / finished).unlink()
    with pytest.raises(SocraticError, match="repeat_unlikelihood"):
        run_train(quick_qg(max_steps=3, save_steps=1))
    run_train(quick_qg(max_steps=3, save_steps=1, repeat_unlikelihood=0.5))  # the same recipe goes on
    assert read_info(out).loss == {"repeat_unlikelihood": 0.5}


def test_the_repeat_unlikelihood_is_qgs_alone(tiny_model, chains_file, tmp_path):
    from socratic.training import train

    config = quick(tiny_model, chains_file, tmp_path, method="iterative", repeat_unlikelihood=0.5)
    assert train._loss_options(config, "qg") == {"repeat_unlikelihood": 0.5}
    assert train._loss_options(config, "qa") == {}, "QA's solutions may well repeat a number"
    with pytest.raises(SocraticError, match="--trl-loss: TRL's loss has no decision weight or repeat"):
        quick(tiny_model, chains_file, tmp_path, trl_loss=True, repeat_unlikelihood=0.5)


def test_trls_loss_is_the_default_only_where_triton_computes_it_in_chunks(monkeypatch):
    import transformers.utils

    monkeypatch.setattr(transformers.utils, "is_triton_available", lambda: True)
    assert uses_trl_loss(TrainConfig(), gpu=True)
    assert not uses_trl_loss(TrainConfig(), gpu=False)  # a CPU: socratic's loss over the trained positions
    assert not uses_trl_loss(TrainConfig(decision_weight=3.0), gpu=True)  # TRL's loss has no decision weight
    assert uses_trl_loss(TrainConfig(trl_loss=True), gpu=False)  # asked for
    assert not uses_trl_loss(TrainConfig(trl_loss=False), gpu=True)
    monkeypatch.setattr(transformers.utils, "is_triton_available", lambda: False)
    assert not uses_trl_loss(TrainConfig(), gpu=True)
