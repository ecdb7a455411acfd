"""TOML files -> (nested) dataclasses, with dotted overrides from the command line.

A config file fully describes a model (Taming style). Overrides look like
``{"model.dim": 256, "train.lr": 3e-4}``; unknown keys are an error, not a silent no-op.
"""
from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path
from typing import Any, TypeVar

from nar.core.errors import NarError
from nar.core.recipes import KINDS, resolve_config

C = TypeVar("C")


def _field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type[C], data: dict[str, Any], where: str = "") -> C:
    """Build dataclass ``cls`` from a dict, recursing into nested dataclasses."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    types = _field_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise NarError(f"unknown config key(s) {sorted(unknown)} in {where or cls.__name__}; "
                       f"known: {sorted(names)}")
    kwargs = {}
    for key, value in data.items():
        ftype = types[key]
        if dataclasses.is_dataclass(ftype) and isinstance(value, dict):
            value = from_dict(ftype, value, f"{where}.{key}" if where else key)
        elif isinstance(value, list) and typing.get_origin(ftype) is tuple:
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def to_dict(obj) -> dict[str, Any]:
    def convert(v):
        if isinstance(v, tuple):
            return [convert(x) for x in v]
        if isinstance(v, dict):
            return {k: convert(x) for k, x in v.items()}
        return v
    return convert(dataclasses.asdict(obj))


def parse_value(text: str) -> Any:
    """Parse a command-line override value with TOML rules ('3', '1e-4', 'true', '[2,2]')."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # bare string


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise NarError(f"config override {dotted!r}: {p!r} is not a section")
        node[leaf] = value
    return data


def load_toml(path: str | Path, kinds: tuple[str, ...] = KINDS) -> dict[str, Any]:
    """A TOML file, or the packaged recipe a bare name stands for (`nar.core.recipes`)."""
    path = resolve_config(path, kinds)
    if not path.is_file():
        raise NarError(f"config file not found: {path}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise NarError(f"config file {path} is not valid TOML: {e}") from None


def load_config(cls: type[C], path: str | Path | None = None,
                overrides: dict[str, Any] | None = None, kinds: tuple[str, ...] = KINDS) -> C:
    """Defaults of ``cls``, updated by the TOML file at ``path`` (or the packaged recipe of
    that bare name, searched in the recipe folders ``kinds``), updated by ``overrides``."""
    data = to_dict(cls())
    if path is not None:
        data = _deep_update(data, load_toml(path, kinds))
    if overrides:
        data = apply_overrides(data, overrides)
    return from_dict(cls, data)


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["model.dim=256", "train.lr=1e-4"]`` -> ``{"model.dim": 256, "train.lr": 1e-4}``."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise NarError(f"config override {item!r} must look like key=value")
        key, value = item.split("=", 1)
        out[key.strip()] = parse_value(value.strip())
    return out


def _deep_update(base: dict, new: dict) -> dict:
    out = dict(base)
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_update(out[k], v)
        else:
            out[k] = v
    return out
