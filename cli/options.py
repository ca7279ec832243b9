"""Click options generated from a pydantic config: one flag per field, named as the field.

`--learning-rate` is `TrainConfig.learning_rate`, its help is the field's description and its
shown default the field's default. Every flag defaults to None (unset), so a config built
from the flags given sets only those fields: an unset `frames` still fits a short clip, a
preset and a masked run's defaults still fill what the user left alone.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import click
from pydantic import BaseModel
from pydantic.fields import FieldInfo

F = TypeVar("F", bound=Callable[..., Any])
ALIAS_SUFFIX = "__alias"  # the parameter name of a hidden old flag: `learning_rate__alias`
NULL = object()  # a flag that set its field to null (`--content fresh`); None means not given


class LiteralChoice(click.Choice):
    """A choice among a Literal's values, given as text and returned as the value itself."""

    def __init__(self, values: tuple[Any, ...]) -> None:
        self.values = {str(v): v for v in values}
        super().__init__(list(self.values))

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return self.values[super().convert(str(value), param, ctx)]


class CommaList(click.ParamType):
    """A tuple field given as comma-separated items: `--mlp-widths 20,20`, `--formats mp4,gif`."""

    name = "list"

    def __init__(self, item: click.ParamType) -> None:
        self.item = item

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        items = [part.strip() for part in str(value).split(",") if part.strip()]
        return tuple(self.item.convert(part, param, ctx) for part in items)


class OptionalInt(click.ParamType):
    """An integer field that may be null, given as a number or a word (`--content fresh`)."""

    name = "integer"

    def __init__(self, none_word: str) -> None:
        self.none_word = none_word

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is NULL or value == self.none_word:
            return NULL
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r}: expected a number or '{self.none_word}'", param, ctx)


def flag_name(field: str) -> str:
    """The flag of a config field: `learning_rate` -> `--learning-rate`."""
    return "--" + field.replace("_", "-")


def click_type(annotation: Any) -> click.ParamType:
    """The click type that reads a field of this annotation from the command line."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return click_type(get_args(annotation)[0])
    if origin is Literal:
        return LiteralChoice(get_args(annotation))
    if origin is tuple:  # the config model checks the items' values and names the field
        item = get_args(annotation)[0]
        return CommaList(click.STRING if get_origin(item) is Literal else click_type(item))
    if origin in (Union, types.UnionType):
        return OptionalInt("none")
    simple: dict[Any, click.ParamType] = {
        int: click.INT,
        float: click.FLOAT,
        str: click.STRING,
        bool: click.BOOL,
    }
    return simple[annotation]


def shown_default(info: FieldInfo) -> str:
    """The field's default as --help shows it."""
    default = info.get_default(call_default_factory=True)
    if isinstance(default, tuple):
        return ",".join(str(v) for v in default)
    return "none" if default is None else str(default)


def config_options(
    model: type[BaseModel],
    aliases: Mapping[str, str] | None = None,
    kinds: Mapping[str, click.ParamType] | None = None,
) -> Callable[[F], F]:
    """A decorator adding one option per field of `model`; `aliases` maps old flags (hidden)
    to field names, `kinds` overrides a field's click type."""

    def decorate(func: F) -> F:
        for name, info in reversed(model.model_fields.items()):
            kind = (kinds or {}).get(name) or click_type(info.annotation)
            for old, field in (aliases or {}).items():
                if field == name:
                    func = click.option(old, name + ALIAS_SUFFIX, type=kind, hidden=True)(func)
            func = _option(name, info, kind)(func)
        return func

    return decorate


def _option(name: str, info: FieldInfo, kind: click.ParamType) -> Callable[[F], F]:
    """The option of one field: a switch for a boolean, else a value."""
    if info.annotation is bool:
        return click.option(
            flag_name(name), name, is_flag=True, default=None, help=info.description
        )
    return click.option(
        flag_name(name),
        name,
        type=kind,
        default=None,  # unset: the config's default applies
        help=f"{info.description}  [default: {shown_default(info)}]",
    )


def given_fields(model: type[BaseModel], options: dict[str, Any]) -> dict[str, Any]:
    """The config fields the command line set (new or old flag), popped from `options`."""
    fields: dict[str, Any] = {}
    for name in model.model_fields:
        value, old = options.pop(name, None), options.pop(name + ALIAS_SUFFIX, None)
        if value is None:
            value = old
        if value is not None:
            fields[name] = None if value is NULL else value
    return fields
