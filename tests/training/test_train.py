"""Training: completion-only labels, packing without cross-talk, every mode learns, resume, LoRA.

Uses a tiny randomly initialised Llama built on SmolLM2's real tokenizer (its first 2,048 words), so each
run takes seconds.
"""

import dataclasses
import functools
import itertools
import json

import pytest
import torch

from socratic.core.config import build
from socratic.core.errors import SocraticError
from socratic.core.jsonl import write_jsonl
from socratic.core.locks import holding_lock
from socratic.core.records import Chain, Step
from socratic.tasks import gsm8k
from socratic.text import formats
from socratic.training.config import TrainConfig
from socratic.training.data import load_pieces, tokenize_pieces
from socratic.training.train import run_train, uses_trl_loss
from socratic.training.trainer import (
    checkpointing_args,
    completion_loss,
    copy_penalty,
    copy_targets,
    trained_positions,
    trainer_class,
)
from socratic.weights import models
from socratic.weights.student_folder import read_info


def quick(tiny_model, chains_file, out, **overrides):
    settings = dict(
        chains=str(chains_file),
        model=str(tiny_model),
        out=str(out),
        max_steps=12,
        batch_size=2,
        max_length=512,
        learning_rate=3e-3,
        warmup_ratio=0.0,
        logging_steps=1,
        save_steps=1000,
        final_checkpoint=False,  # ~0.2 s and 40 MB a training; the tests of resuming a finished student ask for it
    )
    return build(TrainConfig, {**settings, **overrides})


def first_batch(tiny_model, chains_file, tmp_path, mode="unified"):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    pieces, _ = load_pieces(quick(tiny_model, chains_file, tmp_path), mode)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    args = SFTConfig(
        output_dir=str(tmp_path / "x"),
        per_device_train_batch_size=2,
        max_length=512,
        packing=True,
        completion_only_loss=True,
        use_cpu=True,
        report_to="none",
        **checkpointing_args(False),  # (TRL's default is on, under a name transformers 5.x warns about)
    )
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model),
        args=args,
        processing_class=tokenizer,
        train_dataset=Dataset.from_list([tokenize_pieces(tokenizer, p) for p in pieces]),
    )
    return pieces, tokenizer, trainer, next(iter(trainer.get_train_dataloader()))


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


@pytest.fixture(params=["tiny", pytest.param("smollm2-135m", marks=pytest.mark.slow)])
def base(request, tiny_model):
    """What a training test starts from, one test body for both tiers: the tiny random Llama (fast) and
    the real SmolLM2-135M weights (slow), each with a learning rate it learns from in a few steps."""
    if request.param == "tiny":
        return {"model": str(tiny_model), "learning_rate": 3e-3}
    return {"model": str(models.resolve(request.param)), "learning_rate": 1e-4}


@pytest.mark.parametrize("mode", ["cot", "unified"])
def test_a_mode_trains_and_reloads(base, chains_file, tmp_path, mode):
    # Three short steps on one thread; the loss goes down, not yet far. The other roles train in the fast
    # tier too: answer and iterative (QG + QA) in test_the_whole_pipeline_on_a_tinier_config, QG and QA in
    # test_iterative_writes_qg_and_qa.
    out = run_train(
        quick(
            base["model"],
            chains_file,
            tmp_path / mode,
            method=mode,
            max_steps=3,
            max_length=256,
            threads=1,
            learning_rate=base["learning_rate"],
        )
    )
    rows = [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows]
    assert len(losses) == 3 and losses[-1] < losses[0], losses
    seconds = [r["seconds"] for r in rows]  # when each loss was logged: steady-state speed is read off these
    assert 0 < seconds[0] < seconds[1] < seconds[2], seconds
    check_trained_student(out, base["model"], mode)


def check_trained_student(out, tiny_model, mode):
    """A trained student folder: loss plot, its role, changed weights, and it reloads and generates."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert (out / "loss.png").stat().st_size > 1000
    assert read_info(out).role == mode
    before = AutoModelForCausalLM.from_pretrained(tiny_model).state_dict()
    model = AutoModelForCausalLM.from_pretrained(out)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "training did not change the weights"
    tokenizer = AutoTokenizer.from_pretrained(out)
    prompt = tokenizer(formats.problem_prompt("What is 2+3?"), return_tensors="pt")
    generated = model.generate(**prompt, max_new_tokens=5, do_sample=False)
    assert generated.shape[1] > prompt.input_ids.shape[1]


def test_iterative_writes_qg_and_qa(tiny_model, chains_file, tmp_path):
    out = run_train(
        quick(tiny_model, chains_file, tmp_path / "it", method="iterative", max_steps=1, max_length=256, threads=1)
    )
    assert read_info(out / "qg").role == "qg"
    assert read_info(out / "qa").role == "qa"


def test_resume_continues_from_the_saved_step(tiny_model, chains_file, tmp_path):
    # 3 steps with checkpoints every 2 and none at the end, then 5: the later run starts from step 2, not
    # from scratch, and keeps a checkpoint of its end (`socratic train`'s default; `quick` turns it off).
    # Also a cheap place to check that activations are recomputed only when asked (TRL's SFTConfig turns
    # that on unless told otherwise), and with --recompute-every 2 for every other layer only.
    out = tmp_path / "resume"
    short = dict(save_steps=2, max_length=256, threads=1)
    run_train(quick(tiny_model, chains_file, out, max_steps=3, **short))
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["activation_checkpointing"], manifest["recomputed_layers"]) == (False, 0)
    recomputing = dict(gradient_checkpointing=True, recompute_every=2)
    at_the_end = dict(final_checkpoint=TrainConfig.final_checkpoint)  # `socratic train`'s default (on)
    run_train(quick(tiny_model, chains_file, out, max_steps=5, **at_the_end, **recomputing, **short))
    steps = [json.loads(line)["step"] for line in (out / "loss.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]
    state = json.loads((out / "checkpoints" / "checkpoint-5" / "trainer_state.json").read_text())
    assert state["global_step"] == 5
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["activation_checkpointing"], manifest["recomputed_layers"]) == (True, 1)  # of its 2 layers


def test_lora_merges_into_a_plain_checkpoint(base, chains_file, tmp_path):
    from transformers import AutoModelForCausalLM

    out = run_train(
        quick(base["model"], chains_file, tmp_path / "lora", lora_r=8, max_steps=1, max_length=256, threads=1)
    )
    assert (out / "adapter" / "adapter_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(out)
    assert not any("lora" in name for name in model.state_dict())


def test_bad_inputs(tiny_model, chains_file, tmp_path):
    with pytest.raises(SocraticError, match="chains file not found"):
        run_train(quick(tiny_model, tmp_path / "none.jsonl", tmp_path / "o"))
    cot = write_jsonl(tmp_path / "cot.jsonl", [Chain("gsm8k/train/0", "cot", (), "72", True, "human")])
    with pytest.raises(SocraticError, match="role 'qg' needs socratic chains"):
        load_pieces(quick(tiny_model, cot, tmp_path / "o", method="qg"), "qg")
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "socratic.json").write_text(json.dumps({"mode": "unified", "format_version": 0}))
    with pytest.raises(SocraticError, match="retrain it"):
        read_info(tmp_path / "ck")


def test_a_killed_training_is_not_resumed_by_another_recipe(tiny_model, chains_file, tmp_path):
    out = tmp_path / "killed"
    quick = functools.partial(globals()["quick"], max_length=256, threads=1)
    run_train(quick(tiny_model, chains_file, out, max_steps=2, save_steps=1))
    for finished in ("socratic.json", "model.safetensors"):  # as if killed after its checkpoints
        (out / finished).unlink()
    with pytest.raises(SocraticError, match=r"checkpoints made with other settings \(role: 'unified', now 'answer'\)"):
        run_train(quick(tiny_model, chains_file, out, method="answer", max_steps=2, save_steps=1))
    with pytest.raises(SocraticError, match="learning_rate"):
        run_train(quick(tiny_model, chains_file, out, max_steps=2, save_steps=1, learning_rate=1e-3))
    run_train(quick(tiny_model, chains_file, out, max_steps=3, save_steps=1))  # longer: the same run goes on
    assert read_info(out).trained_for["max_steps"] == 3


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


def test_a_qg_trains_with_a_decision_weight_and_resumes_only_with_it(tiny_model, chains_file, tmp_path):
    out = tmp_path / "qg"
    quick_qg = functools.partial(quick, tiny_model, chains_file, out, method="qg", max_length=256, threads=1)
    run_train(quick_qg(max_steps=2, save_steps=1, decision_weight=5.0))
    losses = [json.loads(line)["loss"] for line in (out / "loss.jsonl").read_text().splitlines()]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
    for finished in ("socratic.json", "model.safetensors"):  # as if killed after its checkpoints
        (out / finished).unlink()
    with pytest.raises(SocraticError, match="decision_weight"):
        run_train(quick_qg(max_steps=3, save_steps=1))


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


def test_train_reads_a_users_csv_with_other_column_names(tiny_model, tmp_path, capsys):
    """The data options are the same for every command: a CSV whose columns are not question/answer
    trains as it annotates and solves."""
    from socratic.cli import main

    data = tmp_path / "mine.csv"
    data.write_text("uid,prompt,target\na,What is 2 + 3?,5\nb,What is 4 * 2?,8\n")
    chains = write_jsonl(
        tmp_path / "chains.jsonl",
        [
            Chain(f"mine/all/{uid}", "cot", (Step("", text),), answer, True, "human")
            for uid, text, answer in (("a", "2 + 3 = 5.", "5"), ("b", "4 * 2 = 8.", "8"))
        ],
    )
    fields = ["--dataset", str(data), "--question-field", "prompt", "--answer-field", "target", "--id-field", "uid"]
    argv = [
        "train",
        "--method",
        "cot",
        "--chains",
        str(chains),
        "--model",
        str(tiny_model),
        "--out",
        str(tmp_path / "cot"),
        "--max-steps",
        "1",
        "--batch-size",
        "1",
        "--max-length",
        "128",
        *fields,
    ]
    assert main(argv) == 0, capsys.readouterr().err
    assert read_info(tmp_path / "cot").examples == 2
    assert main(argv[: argv.index("--dataset")]) == 2  # without them the file's problems are unknown
    assert "not a shipped benchmark: give --dataset" in capsys.readouterr().err


def test_rerunning_a_finished_student_skips_it(tiny_model, chains_file, tmp_path):
    out = run_train(quick(tiny_model, chains_file, tmp_path / "done", max_steps=1, max_length=256, threads=1))
    weights = (out / "model.safetensors").stat().st_mtime_ns
    run_train(quick(tiny_model, chains_file, out, max_steps=1, max_length=256, threads=1))
    assert (out / "model.safetensors").stat().st_mtime_ns == weights
    with pytest.raises(SocraticError, match="different student"):
        run_train(quick(tiny_model, chains_file, out, method="answer", max_steps=1, max_length=256, threads=1))


def test_a_hub_id_trains_from_the_hub_cache(hub, chains_file, tmp_path):
    out = run_train(quick("tiny-org/tiny-llama", chains_file, tmp_path / "hub", max_steps=1, max_length=256, threads=1))
    assert read_info(out).base_model == "tiny-org/tiny-llama"
    assert (out / "model.safetensors").is_file()


# --- several processes: `accelerate launch` (DDP; on a machine without GPUs, over gloo on the CPU) ------------


def launch(processes, chains_file, model, out, *flags, wait=True):
    """`accelerate launch --multi_gpu --num_processes N -m socratic train ...` as a user types it (without GPUs
    accelerate runs the processes on the CPU, over gloo; its `--cpu` flag would start only one)."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes)]
    command += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    command += ["--main_process_ip", "127.0.0.1", "--main_process_port", str(port), "-m", "socratic", "train"]
    command += ["--chains", str(chains_file), "--model", str(model), "--out", str(out), "--threads", "1", "--no-bf16"]
    command += ["--max-length", "256", "--learning-rate", "3e-3", "--warmup-ratio", "0", "--logging-steps", "1", *flags]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    run = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    if not wait:
        return run
    stdout, stderr = run.communicate(timeout=900)
    assert run.returncode == 0, stderr[-3000:]
    return stdout, stderr


def losses_of(out):
    return [json.loads(line)["loss"] for line in (out / "loss.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_train_like_one_with_the_same_global_batch(tiny_model, chains_file, tmp_path):
    # One process with 4 rows a step against two with 2 rows each: the same rows, the same loss (transformers
    # averages the loss over the tokens of all processes). Measured: equal to 1e-6; allowed: 1e-4 relative.
    # 8 chains make 8 rows of 256 tokens, two global batches an epoch: an epoch's last batch that does not
    # divide among the processes is filled by accelerate with rows from its start, so it would differ.
    problems = gsm8k.load("train")[:8]
    chains = [Chain(p.id, "socratic", p.human_steps, p.answer, True, "human") for p in problems]
    chains_file = write_jsonl(tmp_path / "chains.jsonl", chains)
    one = quick(tiny_model, chains_file, tmp_path / "one", max_steps=3, batch_size=4, max_length=256, bf16=False)
    alone = run_train(dataclasses.replace(one, threads=1))
    two = tmp_path / "two"
    stdout, _ = launch(2, chains_file, tiny_model, two, "--max-steps", "3", "--batch-size", "2")
    assert stdout.count("unified student of") == 1  # one summary: the main process's
    manifest = json.loads((two / "manifest.json").read_text())
    assert manifest["processes"] == 2 and manifest["steps"] == 3
    assert not list(two.glob("*.tmp"))  # the folder was written once, by the main process
    assert losses_of(two) == pytest.approx(losses_of(alone), rel=1e-4)
    check_trained_student(two, tiny_model, "unified")


@pytest.mark.slow
def test_a_killed_two_process_training_resumes_from_its_checkpoint(tiny_model, chains_file, tmp_path):
    import time

    from socratic.weights.student_folder import latest_checkpoint

    out = tmp_path / "two"
    run = launch(
        2, chains_file, tiny_model, out, "--max-steps", "40", "--batch-size", "2", "--save-steps", "2", wait=False
    )
    deadline = time.time() + 600
    while latest_checkpoint(out) is None and run.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    # The launcher and both training processes (torch's launcher starts them in sessions of their own), at once,
    # as when a machine is lost.
    import psutil

    launcher = psutil.Process(run.pid)
    started = [*launcher.children(recursive=True), launcher]
    for process in started:
        process.kill()
    psutil.wait_procs(started, timeout=60)
    run.wait()
    saved = latest_checkpoint(out)
    assert saved is not None and not (out / "model.safetensors").exists()
    done = int(saved.name.split("-")[1])
    _, stderr = launch(
        2, chains_file, tiny_model, out, "--max-steps", str(done + 4), "--batch-size", "2", "--save-steps", "2"
    )
    assert f"resuming from {saved}" in stderr
    steps = [json.loads(line)["step"] for line in (out / "loss.jsonl").read_text().splitlines()]
    assert steps == list(range(1, done + 5))
    assert json.loads((out / "manifest.json").read_text())["steps"] == done + 4


def test_a_student_folder_being_trained_elsewhere_is_not_trained_twice(tiny_model, chains_file, tmp_path):
    out = tmp_path / "busy"
    config = quick(tiny_model, chains_file, out, max_steps=1, max_length=256, threads=1)
    with holding_lock(out / "checkpoints.lock", "held by the test"):  # as another process training it holds it
        with pytest.raises(SocraticError, match=r"busy is being trained by another process: wait for it to end"):
            run_train(config)
        assert not (out / "checkpoints").exists() and not (out / "model.safetensors").exists()
    run_train(config)  # free again
    assert (out / "model.safetensors").is_file() and not (out / "checkpoints.lock").exists()


def test_a_loss_that_is_no_longer_a_number_stops_training_keeping_the_last_finite_checkpoint(
    tiny_model, chains_file, tmp_path
):
    """A learning rate of 1e308 used to end in "last loss nan", exit 0, and a student of NaN weights."""
    out = tmp_path / "s"
    # Warm-up: the first step's rate is 0, so checkpoint-1 is finite; the second step's 1e308 is not.
    config = quick(tiny_model, chains_file, out, method="unified", learning_rate=1e308, warmup_ratio=0.5)
    config = dataclasses.replace(config, max_steps=4, save_steps=1)
    with pytest.raises(SocraticError, match=r"training diverged at step 2: .*checkpoint-1 \(step 1\) is the last"):
        run_train(config)
    assert not (out / "model.safetensors").exists()  # no student of NaN weights
    kept = sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*"))
    assert kept == ["checkpoint-1"]
    from safetensors.torch import load_file

    assert all(
        torch.isfinite(t).all() for t in load_file(out / "checkpoints" / "checkpoint-1" / "model.safetensors").values()
    )


def test_report_to_tensorboard_writes_the_loss_and_learning_rate(tiny_model, chains_file, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = run_train(
        quick(tiny_model, chains_file, tmp_path / "tb", max_steps=3, max_length=256, threads=1, report_to="tensorboard")
    )
    (events,) = {path.parent for path in (out / "checkpoints" / "runs").rglob("events.out.tfevents.*")}
    board = EventAccumulator(str(events))
    board.Reload()
    losses = [event.value for event in board.Scalars("train/loss")]
    rates = [event.value for event in board.Scalars("train/learning_rate")]
    assert [event.step for event in board.Scalars("train/loss")] == [1, 2, 3]
    recorded = [json.loads(line)["loss"] for line in (out / "loss.jsonl").read_text().splitlines()]
    assert losses == pytest.approx(recorded, rel=1e-5), "tensorboard shows the loss loss.jsonl records"
    assert len(rates) == 3 and rates[0] == pytest.approx(3e-3, rel=1e-4)


def test_report_to_is_checked(tiny_model, chains_file, tmp_path):
    with pytest.raises(SocraticError, match=r"report_to.*mlflow"):
        quick(tiny_model, chains_file, tmp_path / "x", report_to="mlflow")


def test_report_to_a_tracker_that_is_not_installed_is_one_line(tiny_model, chains_file, tmp_path, capsys):
    import importlib.util

    from socratic.cli import main

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    argv = ["train", "--chains", str(chains_file), "--model", str(tiny_model), "--out", str(tmp_path / "s")]
    assert main([*argv, "--report-to", "wandb"]) == 2
    assert "pip install wandb" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_compiled_training_compiles_once_for_all_its_steps(tiny_model, chains_file, tmp_path):
    """--torch-compile pads every step's batch to one length and leaves out the per-step example bounds:
    3 steps compile no more graphs than 1 (padding-free batches change length every step, and each new
    length was a recompile)."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    graphs = []
    for steps in (1, 3):
        torch._dynamo.reset()
        counters.clear()
        run_train(
            quick(
                tiny_model,
                chains_file,
                tmp_path / f"c{steps}",
                max_steps=steps,
                max_length=256,
                torch_compile=True,
                threads=1,
            )
        )
        graphs.append(counters["stats"]["unique_graphs"])
    torch._dynamo.reset()
    assert graphs[0] > 0 and graphs[1] == graphs[0], graphs


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


def test_the_learning_rate_schedule_after_the_warm_up(tiny_model, chains_file, tmp_path):
    import math

    def rates(schedule: str) -> list[float]:
        out = tmp_path / schedule
        run_train(quick(tiny_model, chains_file, out, max_steps=4, threads=1, max_length=256, lr_schedule=schedule))
        return [json.loads(line)["learning_rate"] for line in (out / "loss.jsonl").read_text().splitlines()]

    peak = 3e-3  # quick's rate, no warm-up; step s (0-3) of 4 is logged with the rate it used
    assert rates("linear") == pytest.approx([peak * (1 - s / 4) for s in range(4)])
    assert rates("cosine") == pytest.approx([peak * 0.5 * (1 + math.cos(math.pi * s / 4)) for s in range(4)], abs=1e-12)
    assert rates("constant") == pytest.approx([peak] * 4)
    with pytest.raises(SocraticError, match="lr_schedule"):  # a checkpoint of another schedule is not resumed
        (tmp_path / "cosine" / "socratic.json").unlink()
        run_train(quick(tiny_model, chains_file, tmp_path / "cosine", max_steps=5, threads=1, max_length=256))


def test_a_killed_training_resumes_with_other_speed_options_and_goes_on_as_it_would_have(
    tiny_model, chains_file, tmp_path, caplog
):
    """Issue 33: a long run started with one speed recipe continues with another. The speed options
    (optimizer kernel, packed attention, rows a pass) are not in the resume recipe, and they change no
    arithmetic beyond rounding: the switched run's losses are the straight run's (one row a pass, a
    CPU's default, against both of the batch's rows at once)."""
    quick_run = functools.partial(quick, tiny_model, chains_file, max_length=256, threads=1, save_steps=1)
    straight, switched = tmp_path / "straight", tmp_path / "switched"
    run_train(quick_run(straight, max_steps=4))
    run_train(quick_run(switched, max_steps=2, fused_optimizer=False, packed_attention=False, micro_batch=2))
    for finished in ("socratic.json", "model.safetensors"):  # as if killed after its checkpoints
        (switched / finished).unlink()
    run_train(quick_run(switched, max_steps=4))
    assert "resuming from" in caplog.text

    def losses(out):
        return [json.loads(line)["loss"] for line in (out / "loss.jsonl").read_text().splitlines()]

    assert len(losses(switched)) == 4
    assert losses(switched) == pytest.approx(losses(straight), rel=0.02)  # bf16 autocast where native
    assert json.loads((straight / "manifest.json").read_text())["rows_per_pass"] == 1
