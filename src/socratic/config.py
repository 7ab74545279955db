"""Configuration dataclasses mapped to command-line flags, so that each option is defined once.

    socratic data show --help      # every flag there comes from a dataclass field and its help text

A stage's options are a frozen dataclass whose fields carry `metadata={"help": ...}`;
`add_arguments` turns the fields into `--kebab-case` flags and `from_args` builds the dataclass back
from the parsed namespace. Defaults live in the dataclass only.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, TypeVar

Config = TypeVar("Config")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _plain_type(hint: Any) -> tuple[type, bool]:
    """(the type to parse a flag's text with, whether None is allowed) for a field's type hint."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        assert len(args) == 1, f"config fields may be `T` or `T | None`, not {hint}"
        return args[0], True
    return hint, False


def add_arguments(parser: argparse.ArgumentParser, config_class: type, group_title: str | None = None) -> None:
    """Add one flag per field of `config_class`, with its default and help text."""
    target = parser.add_argument_group(group_title) if group_title else parser
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        kind, _ = _plain_type(hints[field.name])
        default = field.default if field.default is not dataclasses.MISSING else None
        help_text = field.metadata.get("help", "")
        if field.metadata.get("positional"):  # a list of paths, e.g. `socratic evaluate a.jsonl b.jsonl`
            target.add_argument(field.name, nargs="+", type=typing.get_args(kind)[0], help=help_text)
            continue
        if kind is bool:
            target.add_argument(
                _flag(field.name), action=argparse.BooleanOptionalAction, default=default, help=help_text
            )
            continue
        shown = f" (default: {default})" if default is not None else ""
        target.add_argument(
            _flag(field.name),
            type=kind,
            default=default,
            dest=field.name,
            choices=field.metadata.get("choices"),
            metavar=field.metadata.get("metavar"),
            help=help_text + shown,
        )


def from_args(config_class: type[Config], args: argparse.Namespace) -> Config:
    """Build `config_class` from the flags `add_arguments` added."""
    names = [field.name for field in dataclasses.fields(config_class)]  # type: ignore[arg-type]
    return config_class(**{name: getattr(args, name) for name in names})
