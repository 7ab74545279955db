"""Config dataclasses become flags with their defaults and help, and come back from parsed flags."""

import argparse
from dataclasses import dataclass, field

import pytest

from socratic.core import config
from socratic.core.errors import SocraticError
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


@dataclass(frozen=True)
class Group:
    dataset: str | None = field(default=None, metadata={"help": "where the problems come from"})
    limit: int | None = field(default=None, metadata={"help": "the first N", "min": 1})


@dataclass(frozen=True)
class Stage:
    method: str = field(default="unified", metadata={"choices": ("cot", "unified"), "aliases": ("--mode",)})
    data: Group = field(default_factory=Group)
    rate: float = field(default=1.0, metadata={"above": 0})
    names: tuple[str, ...] = field(default=("a",), metadata={"help": "several names"})


def parse_stage(*argv, file_values=None):
    parser = argparse.ArgumentParser()
    config.add_arguments(parser, Stage)
    return config.from_args(Stage, parser.parse_args(list(argv)), file_values, "my.toml [stage]")


def test_a_group_of_options_is_flat_in_flags_and_files():
    assert parse_stage("--dataset", "svamp", "--limit", "3") == Stage(data=Group("svamp", 3))
    assert parse_stage(file_values={"limit": 2}) == Stage(data=Group(limit=2))


def test_flags_override_the_file_and_the_file_overrides_defaults():
    from_file = {"method": "cot", "rate": 2, "names": ["x", "y"]}
    assert parse_stage(file_values=from_file) == Stage(method="cot", rate=2.0, names=("x", "y"))
    assert parse_stage("--rate", "3", file_values=from_file) == Stage(method="cot", rate=3.0, names=("x", "y"))
    assert parse_stage("--mode", "unified", file_values=from_file).method == "unified", "the old spelling works"


@pytest.mark.parametrize(
    ("argv", "file_values", "message"),
    [
        ((), {"rat": 2}, r"my.toml \[stage\]: 'rat': unknown option \(did you mean 'rate'\?\)"),
        ((), {"rate": "two"}, r"'rate': expected a number, not 'two'"),
        ((), {"rate": 0}, r"'rate': must be above 0, not 0.0"),
        ((), {"limit": 1.5}, r"'limit': expected a whole number, not 1.5"),
        ((), {"limit": True}, r"'limit': expected a whole number"),
        ((), {"names": "x"}, r"'names': expected a list of names"),
        ((), {"method": "unifed"}, r"'method': unknown value 'unifed' \(did you mean 'unified'\?\)"),
        (("--limit", "-3"), {}, r"^--limit: must be at least 1, not -3$"),
        (("--dataset", " "), {}, r"^--dataset: must not be empty$"),
        (("--rate", "-1"), {}, r"^--rate: must be above 0, not -1.0$"),
        (("--rate", "nan"), {}, r"^--rate: expected a number, not nan$"),
    ],
)
def test_every_value_is_checked_once_with_one_line_naming_where_it_came_from(argv, file_values, message):
    with pytest.raises(SocraticError, match=message):
        parse_stage(*argv, file_values=file_values)


def test_the_stage_configs_check_their_bounds():
    from socratic.commands.solve import SolveConfig
    from socratic.training.config import TrainConfig

    for cls, values, message in [
        (SolveConfig, {"chunk": 0}, "'chunk': must be at least 1"),
        (SolveConfig, {"batch_size": 0}, "'batch_size': must be at least 1"),
        (SolveConfig, {"samples": 0}, "'samples': must be at least 1"),
        (SolveConfig, {"limit": -3}, "'limit': must be at least 1"),
        (TrainConfig, {"epochs": -1}, "'epochs': must be above 0"),
        (TrainConfig, {"max_length": 0}, "'max_length': must be at least 8"),
        (TrainConfig, {"learning_rate": -1}, "'learning_rate': must be above 0"),
        (TrainConfig, {"max_steps": 0}, "--max-steps: must be at least 1"),
    ]:
        with pytest.raises(SocraticError, match=message):
            config.build(cls, values)
