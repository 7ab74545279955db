"""What the training tests share: a quick recipe on the tiny model (`quick`), the first packed batch
TRL's trainer makes of it (`first_batch`), and checks of what a training wrote."""

import json

import torch

from socratic.core.config import build
from socratic.text import formats
from socratic.training.config import TrainConfig
from socratic.training.data import load_pieces, tokenize_pieces
from socratic.training.trainer import checkpointing_args
from socratic.weights.student_folder import read_info


def quick(tiny_model, chains_file, out, **overrides):
    """A training config that runs in seconds on the tiny model: 12 steps at a high rate, no warm-up, every
    loss logged, no checkpoints unless asked; `overrides` are the TrainConfig fields a test changes."""
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
    """(pieces, tokenizer, TRL's SFTTrainer, its first packed batch) for the chains in `mode`."""
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


def losses_of(out):
    """The losses a training logged, step by step (`loss.jsonl`)."""
    return [json.loads(line)["loss"] for line in (out / "loss.jsonl").read_text().splitlines()]
