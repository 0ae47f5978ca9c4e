"""The settings a definition declares for itself, beside the framework's own (`pipelines.config.Config`).

A definition module may hold a frozen dataclass named `Settings`. Its fields are the pipeline's own
settings, typed and with defaults; its `[pipeline.NAME]` table in the config file, `-s NAME=VALUE` and
the flags it asks for set them, and the definition reads them as `cfg.settings`:

    @dataclass(frozen=True)
    class Settings:
        label: str = setting("label", "the column to predict", flag=True)      # also --label COLUMN
        tuning: bool = setting(True, "tune hyperparameters or train once", flag=True)   # --tuning/--no-tuning

    def definition(cfg):
        ... cfg.settings.label ...

The framework knows nothing of these settings beyond their names and types: it checks and converts
the values (text from the command line, typed values from TOML or Python), refuses an unknown name
with the closest known one, and keeps them in the execution's record.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any


class ConfigError(ValueError):
    """A setting is missing or malformed; the message says where and how to fix it."""


TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def setting(default: Any, help: str = "", *, choices: tuple = (), flag: bool = False):
    """A field of a definition's `Settings`: its default, what it means, the values it allows, and
    whether the command line gets a flag for it (`--name-with-dashes`; booleans `--name/--no-name`)."""
    metadata = {"help": help, "choices": tuple(choices), "flag": flag}
    if isinstance(default, (dict, list)):
        frozen = default
        return field(default_factory=lambda: type(frozen)(frozen), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Option:
    """One declared setting as the framework sees it."""

    name: str
    type: Any  # the resolved annotation: str, int, float, bool, dict[str, str], tuple[str, ...] or a union of them
    default: Any
    help: str
    choices: tuple
    flag: bool

    @property
    def flag_name(self) -> str:
        return "--" + self.name.replace("_", "-")


def declared(module: ModuleType | None) -> type | None:
    """The `Settings` dataclass of a definition's module, if it declares one."""
    cls = getattr(module, "Settings", None)
    if cls is None:
        return None
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ConfigError(f"{getattr(module, '__file__', module)}: `Settings` must be a dataclass "
                          f"(@dataclass(frozen=True) class Settings: ...)")
    return cls


def options(cls: type | None) -> dict[str, Option]:
    """The declared settings of `cls` (a `Settings` dataclass, or None for none), by name."""
    if cls is None:
        return {}
    hints = typing.get_type_hints(cls)
    return {f.name: Option(f.name, hints[f.name], _default(f), f.metadata.get("help", ""),
                           tuple(f.metadata.get("choices", ())), bool(f.metadata.get("flag")))
            for f in dataclasses.fields(cls)}


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def make(cls: type | None, values: dict[str, Any], where: dict[str, str] | None = None, *, typed: frozenset = frozenset()):
    """An instance of `cls` with `values`, the rest at their defaults: text is parsed (the command line's),
    other values and those named in `typed` (a file's) are checked against their fields. `where[name]`
    says where a value came from, for messages (default: `-s NAME`)."""
    known = options(cls)
    where = where or {}
    for name in values:
        if name not in known:
            raise ConfigError(unknown(name, known, where.get(name, f"-s {name}")))
    try:
        return cls(**{name: convert(known[name], value, where.get(name, f"-s {name}"), typed=name in typed)
                      for name, value in values.items()})
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:  # the Settings class's own checks (__post_init__)
        raise ConfigError(f"settings of this pipeline: {e}") from None


def unknown(name: str, known: dict, where: str) -> str:
    """The message for a setting no one declared: the closest known names, or all of them."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}?" if close else \
        f"this pipeline's settings are {', '.join(known)}" if known else "this pipeline declares no settings"
    return f"unknown setting {name!r} ({where}): {hint}"


def convert(option: Option, value: Any, where: str, *, typed: bool = False) -> Any:
    """`value` as the option's type: text is parsed (unless `typed`), other values checked; choices enforced."""
    out = parse(value, option.type, where) if isinstance(value, str) and not typed else check(value, option.type, where)
    if option.choices and out not in option.choices:
        raise ConfigError(f"{where} {value!r}: choose one of {', '.join(map(str, option.choices))}")
    return out


def parse(text: str, kind: Any, where: str) -> Any:
    """Text from the command line as `kind`: booleans in the usual spellings, numbers, JSON objects (or a
    file holding one) for tables, comma-separated lists; a union takes its first member that parses."""
    members = [m for m in typing.get_args(kind)] if typing.get_origin(kind) in (typing.Union, _UnionType) else [kind]
    for member in members:
        try:
            return _parse_one(text, member)
        except (ValueError, TypeError):
            continue
    raise ConfigError(f"{where} {text!r} is not {_name(kind)}")


def _parse_one(text: str, kind: Any) -> Any:
    origin = typing.get_origin(kind) or kind
    if kind is type(None):
        if text.lower() in ("", "none"):
            return None
        raise ValueError(text)
    if origin is bool:
        if text.lower() in TRUE + FALSE:
            return text.lower() in TRUE
        raise ValueError(text)
    if origin in (int, float, str):
        return origin(text)
    if origin is dict:
        source = Path(text).read_text() if Path(text).is_file() else text
        doc = json.loads(source)
        if not isinstance(doc, dict):
            raise ValueError(text)
        return doc
    if origin is tuple:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    raise TypeError(kind)


def check(value: Any, kind: Any, where: str) -> Any:
    """A typed value (from TOML or Python) checked against `kind`; lists become tuples where tuples are wanted."""
    members = [m for m in typing.get_args(kind)] if typing.get_origin(kind) in (typing.Union, _UnionType) else [kind]
    for member in members:
        origin = typing.get_origin(member) or member
        if member is type(None) and value is None:
            return None
        if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if origin is tuple and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        if origin is dict and isinstance(value, dict):
            args = typing.get_args(member)
            if args and not all(isinstance(v, args[1]) for v in value.values()):
                raise ConfigError(f"{where} must be a table of {_name(args[1])} values, got {value!r}")
            return value
        if origin in (str, int, bool) and isinstance(value, origin) and (origin is bool or not isinstance(value, bool)):
            return value
        if isinstance(value, Path) and origin is str:
            return str(value)
    raise ConfigError(f"{where} must be {_name(kind)}, got {value!r}")


_UnionType = type(int | str)


def _name(kind: Any) -> str:
    if typing.get_origin(kind) in (typing.Union, _UnionType):
        return " or ".join(_name(m) for m in typing.get_args(kind) if m is not type(None))
    origin = typing.get_origin(kind) or kind
    return {dict: "dict", tuple: "a list of strings", bool: "bool", int: "int", float: "float",
            str: "str"}.get(origin, str(kind))


def with_defaults(cls: type, **defaults) -> type:
    """A subclass of the `Settings` dataclass `cls` whose fields default to `defaults` (help, choices and
    flags kept): how a definition built on another one states what it settles."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    missing = [name for name in defaults if name not in fields]
    if missing:
        raise ConfigError(unknown(missing[0], fields, f"defaults of {cls.__name__}"))
    hints = typing.get_type_hints(cls)
    changed = [(name, hints[name], setting(value, fields[name].metadata.get("help", ""),
                                           choices=fields[name].metadata.get("choices", ()),
                                           flag=fields[name].metadata.get("flag", False)))
               for name, value in defaults.items()]
    return dataclasses.make_dataclass(cls.__name__, changed, bases=(cls,), frozen=True,
                                      namespace={"__module__": cls.__module__, "__doc__": cls.__doc__})


def as_dict(instance) -> dict:
    """The settings as plain JSON values (what an execution records)."""
    return {} if instance is None else json.loads(json.dumps(dataclasses.asdict(instance), default=str))


def duration_seconds(text: str) -> int:
    """Whole seconds of a duration as people write it: 90, 90s, 5m, 1h30m, 2h."""
    match = _DURATION.fullmatch(str(text).strip().lower())
    if not match or not any(match.groups()):
        raise ConfigError(f"time budget {text!r} is not a duration: write it like 90s, 5m or 1h30m")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = round(hours * 3600 + minutes * 60 + seconds)
    if total < 1:
        raise ConfigError(f"time budget {text!r} is shorter than a second")
    return total


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?")
