"""Packaged recipes: the TOML configs that ship with nar, found by a bare name.

``configs/`` in the repository is the one source. A built wheel carries a copy as
``nar/recipes/`` (setup.py's build step); a checkout (editable install) reads ``configs/``.

    resolve_config("f16_small", KINDS_TOKENIZER)  -> .../tokenizer/f16_small.toml
    resolve_config("defaults/sundae", ...)        -> .../defaults/sundae.toml
    resolve_config("my/own.toml", ...)            -> my/own.toml (a path is used as given)

A bare name is one without a ``.toml`` suffix that is not an existing file; it is looked up
in the recipe folders of the given kinds, in order (``kind/name`` picks the folder).
"""
from __future__ import annotations

from pathlib import Path

from nar.core.errors import ArgumentError

__all__ = ["KINDS", "KINDS_TOKENIZER", "KINDS_PRIOR", "KINDS_SR", "recipes_dir", "list_recipes",
           "resolve_config", "describe"]

KINDS = ("tokenizer", "priors", "defaults", "sr")    # the recipe folders
KINDS_TOKENIZER = ("tokenizer",)
KINDS_PRIOR = ("priors", "defaults")                  # `nar train --config sundae`: priors/ first
KINDS_SR = ("sr",)

_PACKAGE = Path(__file__).resolve().parents[1]        # nar/


def recipes_dir() -> Path:
    """``nar/recipes`` in an installed wheel, else the checkout's ``configs/``."""
    packaged = _PACKAGE / "recipes"
    return packaged if packaged.is_dir() else _PACKAGE.parent / "configs"


def list_recipes(kinds: tuple[str, ...] = KINDS) -> dict[str, Path]:
    """``{"tokenizer/f16_small": path, ...}`` for the given kinds, in kind order then by name."""
    root = recipes_dir()
    return {f"{kind}/{p.stem}": p for kind in kinds for p in sorted((root / kind).glob("*.toml"))}


def describe(path: Path) -> str:
    """A recipe's first comment line (without the '#')."""
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("#"):
            return line.lstrip("#").strip()
        if line:
            break
    return ""


def is_bare_name(config: str | Path) -> bool:
    text = str(config)
    return not text.endswith(".toml") and not Path(text).exists() and text.count("/") <= 1 and "\\" not in text


def resolve_config(config: str | Path | None, kinds: tuple[str, ...] = KINDS) -> Path | None:
    """A config path as given, or the packaged recipe a bare name stands for (see the module
    docstring); `ArgumentError` (``config``) listing the recipe names for an unknown one."""
    if config is None:
        return None
    if not is_bare_name(config):
        return Path(config)
    name = str(config)
    found = list_recipes(kinds)
    if "/" in name:
        match = found.get(name)
    else:
        match = next((p for key, p in found.items() if key.split("/", 1)[1] == name), None)
    if match is None:
        names = ", ".join(k.split("/", 1)[1] if len(kinds) == 1 else k for k in found)
        raise ArgumentError("config", f"no config file or packaged recipe called {name!r}; recipes: {names} "
                                      f"(or give a path to a .toml file)")
    return match
