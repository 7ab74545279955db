"""Config dataclasses become flags with their defaults and help, and come back from parsed flags."""

import argparse
from dataclasses import dataclass, field

from socratic import config
from socratic.tasks import FileFields


@dataclass(frozen=True)
class Example:
    learning_rate: float = field(default=3e-5, metadata={"help": "peak learning rate"})
    epochs: int = field(default=3, metadata={"help": "passes over the data"})
    lora_r: int | None = field(default=None, metadata={"help": "LoRA rank; full fine-tuning if unset"})
    packing: bool = field(default=True, metadata={"help": "pack examples into full sequences"})


def parse(*argv):
    parser = argparse.ArgumentParser()
    config.add_arguments(parser, Example)
    return config.from_args(Example, parser.parse_args(list(argv))), parser


def test_defaults_come_from_the_dataclass():
    parsed, _ = parse()
    assert parsed == Example()


def test_flags_override_with_types():
    parsed, _ = parse("--learning-rate", "1e-4", "--epochs", "5", "--lora-r", "16", "--no-packing")
    assert parsed == Example(learning_rate=1e-4, epochs=5, lora_r=16, packing=False)


def test_help_shows_field_help_and_defaults():
    _, parser = parse()
    text = parser.format_help()
    assert "--learning-rate LEARNING_RATE" in text and "peak learning rate (default: 3e-05)" in text
    assert "--packing, --no-packing" in text


def test_file_fields_flags():
    parser = argparse.ArgumentParser()
    config.add_arguments(parser, FileFields, "fields")
    fields = config.from_args(FileFields, parser.parse_args(["--question-field", "prompt", "--id-field", "uid"]))
    assert fields == FileFields(question_field="prompt", id_field="uid")
