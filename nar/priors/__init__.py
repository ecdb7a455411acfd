"""Priors over token grids, chosen by name: ``PRIORS.get("sundae")``.

Adding a prior: one new file that subclasses `Prior` and registers itself with
``@PRIORS.register("name")``, plus one import line below.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

# x-transformers still calls torch.jit.script at import; users should not see that warning
warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)

from nar.core.checkpoint import expect_kind, load_checkpoint, read_meta
from nar.core.config import load_config
from nar.core.recipes import KINDS_PRIOR
from nar.core.errors import NarError
from nar.priors.base import Prior, SampleOutput
from nar.priors.registry import PRIORS

# registration happens on import
from nar.priors import ar, maskgit, sundae  # noqa: E402,F401

__all__ = ["PRIORS", "Prior", "SampleOutput", "build_prior", "load_prior", "prior_names"]


def prior_names() -> list[str]:
    return PRIORS.names()


def build_prior(name: str, config_path: str | Path | None = None, overrides: dict | None = None, *,
                codebook_size: int, num_classes: int = 0, train_grid: tuple[int, int] = (16, 16)) -> Prior:
    cls = PRIORS.get(name)
    cfg = load_config(cls.config_cls, config_path, overrides, kinds=KINDS_PRIOR)
    return cls(cfg, codebook_size, num_classes, train_grid)


def load_prior(path: str | Path, name: str | None = None, tokenizer_hash: str | None = None,
               device: str | torch.device = "cpu") -> Prior:
    """Load a prior checkpoint; refuses a checkpoint of another prior or another tokenizer."""
    meta = read_meta(path)
    expect_kind(meta, "prior", path, name)
    if tokenizer_hash is not None and meta.get("tokenizer_hash") not in (None, tokenizer_hash):
        raise NarError(f"{path} was trained on tokens of tokenizer {meta.get('tokenizer_hash')}, "
                       f"but the tokenizer given is {tokenizer_hash}")
    cls = PRIORS.get(meta["name"])
    prior = cls.from_meta(meta)
    tensors, _ = load_checkpoint(path)
    missing, unexpected = prior.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise NarError(f"{path} does not fit prior {meta['name']!r} "
                       f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)")
    prior.meta_info = meta  # class names, tokenizer hash, training step
    return prior.to(device).eval()
