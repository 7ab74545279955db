"""Configuration: each stage's options are one dataclass, whose fields are both its --flags and the
keys of its section in a config file, checked once, before any work.

    socratic train --help                         # every flag comes from a field and its help text
    socratic train --config run.toml --epochs 3   # the file's [train] section, then the flags on top

A field carries `metadata={"help": ...}` and, where it applies, `"choices"`, `"min"` (the smallest
value allowed) or `"above"` (a bound the value must exceed); `"positional"` (True: one or more
values, "?": at most one) makes it an argument without a flag, `"repeat"` a list given one flag at
a time. A field whose type is itself a
dataclass is a group of options (the data options every command that reads problems shares): its
fields become flags and keys of the same level, so `--dataset` and `dataset = "gsm8k"` set
`config.data.dataset`. `add_arguments` adds the flags; `build` makes the dataclass from a dict of
values from a file and flags, checking names (with a "did you mean"), types and bounds, so a
mistake stops the command with one line naming the flag or the key. Defaults live in the dataclass
only.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from socratic.core.errors import SocraticError, did_you_mean

Config = TypeVar("Config")


@dataclass(frozen=True)
class Option:
    """One flag / key: a field of the stage dataclass or of one of its groups."""

    field: dataclasses.Field
    kind: type  # the plain type of its values: bool, int, float, str or tuple
    optional: bool  # whether None is allowed (`T | None`)
    group: str | None  # the name of the group field it belongs to, if any

    @property
    def name(self) -> str:
        return self.field.name

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def default(self) -> Any:
        f = self.field
        if f.default is not dataclasses.MISSING:
            return f.default
        return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def _plain_type(hint: Any) -> tuple[Any, bool]:
    """(the type of a field's values, whether None is allowed) for a field's type hint."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        assert len(args) == 1, f"config fields may be `T` or `T | None`, not {hint}"
        return args[0], True
    return hint, False


def options(config_class: type) -> list[Option]:
    """Every option of `config_class`, groups flattened, in declaration order."""
    found: list[Option] = []
    hints = typing.get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        kind, optional = _plain_type(hints[f.name])
        if dataclasses.is_dataclass(kind):
            found += [dataclasses.replace(o, group=f.name) for o in options(kind)]
        else:
            found.append(Option(f, kind, optional, None))
    names = [o.name for o in found]
    assert len(names) == len(set(names)), f"{config_class.__name__}: an option name is used twice: {names}"
    return found


def add_arguments(
    parser: argparse.ArgumentParser, config_class: type, group_title: str | None = None, skip: tuple[str, ...] = ()
) -> None:
    """One flag per option of `config_class`, with its help text and default.

    Flags not given stay out of the parsed namespace (`argparse.SUPPRESS`), so that a config file's
    value is overridden only by a flag the user typed.
    """
    groups: dict[str | None, Any] = {None: parser.add_argument_group(group_title) if group_title else parser}
    titles = {f.name: f.metadata.get("title") for f in dataclasses.fields(config_class)}  # a group's own heading
    for option in options(config_class):
        if option.name in skip:
            continue
        if option.group not in groups:
            title = titles.get(option.group) or f"{option.group} options"
            groups[option.group] = parser.add_argument_group(title)
        target = groups[option.group]
        meta = option.field.metadata
        help_text = meta.get("help", "")
        if meta.get("positional") == "?":  # one optional value, e.g. `socratic models prepare NAME`
            target.add_argument(option.name, nargs="?", default=argparse.SUPPRESS, help=help_text)
            continue
        if meta.get("positional"):  # a list of paths, e.g. `socratic evaluate a.jsonl b.jsonl`
            target.add_argument(option.name, nargs="+", help=help_text)
            continue
        if meta.get("repeat"):  # a list given one flag at a time: `--dataset gsm8k --dataset svamp`
            target.add_argument(
                option.flag, action="append", default=argparse.SUPPRESS, dest=option.name, help=help_text
            )
            continue
        if option.kind is bool:
            target.add_argument(
                option.flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text
            )
            continue
        shown = f" (default: {option.default})" if option.default is not None else ""
        target.add_argument(
            option.flag,
            *meta.get("aliases", ()),  # old spellings kept working, e.g. --mode for --method
            type=str if typing.get_origin(option.kind) in (tuple, list) else option.kind,
            nargs="+" if typing.get_origin(option.kind) in (tuple, list) else None,
            default=argparse.SUPPRESS,
            dest=option.name,
            choices=meta.get("choices"),
            metavar=meta.get("metavar"),
            help=help_text + shown,
        )


def given_flags(config_class: type, args: argparse.Namespace) -> dict[str, Any]:
    """The options of `config_class` the user typed on the command line."""
    return {o.name: getattr(args, o.name) for o in options(config_class) if hasattr(args, o.name)}


def from_args(
    config_class: type[Config], args: argparse.Namespace, file_values: Mapping[str, Any] | None = None, source: str = ""
) -> Config:
    """`config_class` from a config file's section (if any) with the typed flags on top."""
    flags = given_flags(config_class, args)
    values = {**(file_values or {}), **flags}

    flag_of = {o.name: o.flag for o in options(config_class)}

    def where(name: str) -> str:
        if name in flags:
            return flag_of[name]
        return f"{source}: {name!r}" if source else repr(name)

    return build(config_class, values, where)


def build(config_class: type[Config], values: Mapping[str, Any], where: Callable[[str], str] | None = None) -> Config:
    """`config_class` from option values by name, every value checked; unset options keep their default."""
    where = where or repr
    known = {o.name: o for o in options(config_class)}
    for name in values:
        if name not in known:
            raise SocraticError(f"{where(name)}: unknown option{did_you_mean(name, known)}")
    checked = {name: check_value(known[name], value, where(name)) for name, value in values.items()}
    top: dict[str, Any] = {}
    grouped: dict[str, dict[str, Any]] = {}
    for name, value in checked.items():
        group = known[name].group
        if group is None:
            top[name] = value
        else:
            grouped.setdefault(group, {})[name] = value
    hints = typing.get_type_hints(config_class)
    for group, group_values in grouped.items():
        top[group] = _plain_type(hints[group])[0](**group_values)
    required = [o for o in known.values() if o.field.metadata.get("positional") in (True, "+")]
    missing = [o.name for o in required if o.name not in values]
    if missing:
        raise SocraticError(f"{missing[0]} is required")
    return config_class(**top)


def check_value(option: Option, value: Any, where: str) -> Any:
    """`value` as the option's type, or a one-line error naming where it came from."""
    meta = option.field.metadata
    if value is None:
        if option.optional:
            return None
        raise SocraticError(f"{where}: a value is required")
    kind = option.kind
    if typing.get_origin(kind) in (tuple, list):
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise SocraticError(f'{where}: expected a list of names, like ["a", "b"], not {_shown(value)}')
        value = typing.get_origin(kind)(value)
        items = value
        if "choices" in meta:  # names from a fixed set (methods): at least one, each once, before any work
            if not value:
                raise SocraticError(f"{where}: must name at least one of: {', '.join(meta['choices'])}")
            repeated = next((item for n, item in enumerate(value) if item in value[:n]), None)
            if repeated is not None:
                raise SocraticError(f"{where}: {repeated!r} is named twice")
    elif kind is bool:
        if not isinstance(value, bool):
            raise SocraticError(f"{where}: expected true or false, not {_shown(value)}")
        items = (value,)
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SocraticError(f"{where}: expected a whole number, not {_shown(value)}")
        items = (value,)
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SocraticError(f"{where}: expected a number, not {_shown(value)}")
        value = float(value)
        items = (value,)
    elif kind is str:
        if not isinstance(value, str):
            raise SocraticError(f"{where}: expected a string, not {_shown(value)}")
        if not value.strip():  # `--dataset ""` would otherwise read as unset and fall back to the default
            raise SocraticError(f"{where}: must not be empty")
        if "\x00" in value:
            raise SocraticError(f"{where}: contains a NUL character")
        items = (value,)
    else:  # pragma: no cover - a new field type needs a rule here
        raise AssertionError(f"no check for options of type {kind}")
    choices = meta.get("choices")
    for item in items:
        if choices is not None and item not in choices:
            raise SocraticError(f"{where}: unknown value {item!r}{did_you_mean(str(item), choices)}")
        if "min" in meta and item < meta["min"]:
            raise SocraticError(f"{where}: must be at least {meta['min']}, not {item}")
        if "above" in meta and item <= meta["above"]:
            raise SocraticError(f"{where}: must be above {meta['above']}, not {item}")
    return value


def _shown(value: Any) -> str:
    """A value as an error message shows it: its repr, cut short (a config may hold a 100,000-item list)."""
    import reprlib

    shortened = reprlib.Repr()
    shortened.maxstring = shortened.maxother = 80
    shortened.maxlist = shortened.maxtuple = shortened.maxdict = 6
    return shortened.repr(value)
