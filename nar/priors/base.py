"""The interface every prior implements, and what they share (conditioning, CFG, checks).

A prior models a grid of token ids (B, h, w) with ids in [0, codebook_size). It never sees
the tokenizer: pipelines compose the two. Class conditioning uses an embedding table with
``num_classes + 1`` rows; the last row is the "no condition" id, used for unconditional
sampling and dropped with probability ``cond_drop_prob`` in training so that classifier-free
guidance works: ``logits = l_uncond + cfg * (l_cond - l_uncond)`` (cfg = 1: plain conditional).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from nar.core.config import from_dict, to_dict
from nar.core.errors import NarError
from nar.sampling.filters import validate_sampling_args


@dataclass
class SampleOutput:
    tokens: torch.Tensor   # (n, h, w) long
    steps_run: int         # sampling steps actually taken (early stopping can cut them)
    forward_passes: int    # network evaluations (a CFG pair runs as one batched pass)


class Prior(nn.Module):
    name: ClassVar[str]
    config_cls: ClassVar[type]
    default_steps: ClassVar[int | None] = None

    def __init__(self, cfg, codebook_size: int, num_classes: int = 0,
                 train_grid: tuple[int, int] = (16, 16)):
        super().__init__()
        self.cfg = cfg
        self.codebook_size = int(codebook_size)
        self.num_classes = int(num_classes)
        self.train_grid = tuple(int(x) for x in train_grid)

    # ---- what each prior implements -------------------------------------------------
    def loss(self, tokens: torch.Tensor, cond: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Training loss on (B, h, w) tokens; returns {"loss": scalar, ...named parts}."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, grid: tuple[int, int], steps: int | None = None, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None, cond: torch.Tensor | None = None,
               cfg_scale: float = 1.0, known: torch.Tensor | None = None, keep: torch.Tensor | None = None,
               generator: torch.Generator | None = None, **options: Any) -> SampleOutput:
        """(n, h, w) tokens. Inpainting: ``known`` (n, h, w) ids and ``keep`` (n, h, w) bool;
        positions where keep is True come back unchanged."""
        raise NotImplementedError

    def flops_per_image(self, grid: tuple[int, int], steps_run: int | None = None,
                        forward_passes: int | None = None) -> int | None:
        """Analytic sampling FLOPs for one image on an h×w grid without guidance (CFG doubles
        them), counted as in ``nar.nn.flops``, given the steps and network evaluations the
        sampler reported. None when the prior has no formula."""
        return None

    flops_note: ClassVar[str] = ""  # how ``flops_per_image`` counts, for benchmark tables

    def init_from_codebook(self, codebook: torch.Tensor) -> bool:
        """Optionally initialise token embeddings from the tokenizer's (V, d) code vectors.
        Returns whether the prior used them."""
        return False

    # ---- shared helpers ---------------------------------------------------------------
    @property
    def null_class(self) -> int:
        return self.num_classes

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def class_ids(self, cond: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Condition ids for a batch: the given classes, or the null id when unconditional."""
        if cond is None:
            return torch.full((batch,), self.null_class, dtype=torch.long, device=self.device)
        cond = cond.to(self.device, torch.long)
        if cond.ndim == 0:
            cond = cond.expand(batch)
        if ((cond < 0) | (cond > self.null_class)).any():
            raise NarError(f"class id out of range [0, {self.num_classes})")
        return cond

    def drop_condition(self, cond: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Training: replace each class id by the null id with probability cond_drop_prob
        (draws from the global RNG, which the training loop seeds per step)."""
        ids = self.class_ids(cond, batch)
        p = getattr(self.cfg, "cond_drop_prob", 0.0)
        if cond is not None and p > 0:
            drop = torch.rand(batch, device=ids.device) < p
            ids = torch.where(drop, torch.full_like(ids, self.null_class), ids)
        return ids

    def guided(self, forward: Callable[[torch.Tensor], torch.Tensor], class_ids: torch.Tensor,
               cfg_scale: float) -> torch.Tensor:
        """Run ``forward(class_ids)`` -> logits, with classifier-free guidance when asked.
        The conditional and unconditional halves run as one batched forward pass."""
        if cfg_scale == 1.0 or not bool((class_ids != self.null_class).any()):  # scale first: no host sync
            return forward(class_ids)
        both = torch.cat([class_ids, torch.full_like(class_ids, self.null_class)])
        return self.combine_guidance(forward(both), cfg_scale)

    @staticmethod
    def combine_guidance(logits: torch.Tensor, cfg_scale: float) -> torch.Tensor:
        """Logits of a [cond; null] batch -> guided float logits for the cond half."""
        logits_c, logits_u = logits.float().chunk(2)
        return logits_u + cfg_scale * (logits_c - logits_u)

    @property
    def grid_multiple(self) -> int:
        """Token grid sides must be multiples of this (e.g. an hourglass's total shortening)."""
        return 1

    def check_sample_args(self, n: int = 1, steps: int | None = None, temperature: float | None = None,
                          top_k: int | None = None, top_p: float | None = None) -> None:
        """`ArgumentError` for values no sampler accepts (n, steps, temperature, top_k, top_p)."""
        validate_sampling_args(steps=steps, temperature=temperature, top_k=top_k, top_p=top_p, n=n)

    def check_grid(self, grid: tuple[int, int]) -> tuple[int, int]:
        h, w = (int(x) for x in grid)
        if h < 1 or w < 1:
            raise NarError(f"token grid must be positive, got {h}x{w}")
        return h, w

    def check_generator(self, generator: torch.Generator | None) -> None:
        """Sampling draws from ``generator``; one on another device would fail deep inside."""
        if generator is not None and generator.device != self.device:
            raise NarError(f"{self.name}: the generator is on {generator.device}, the model on {self.device}")

    def check_inpaint(self, n: int, grid: tuple[int, int], known, keep):
        """Validate inpainting inputs; returns (known, keep) on the model's device or (None, None)."""
        if known is None and keep is None:
            return None, None
        if known is None or keep is None:
            raise NarError("inpainting needs both known tokens and a keep mask")
        known = known.to(self.device, torch.long)
        keep = keep.to(self.device, torch.bool)
        if known.ndim == 2:
            known = known.expand(n, *known.shape)
        if keep.ndim == 2:
            keep = keep.expand(n, *keep.shape)
        if tuple(known.shape) != (n, *grid) or tuple(keep.shape) != (n, *grid):
            raise NarError(f"known tokens {tuple(known.shape)} / keep mask {tuple(keep.shape)} "
                           f"do not match ({n}, {grid[0]}, {grid[1]})")
        if ((known < 0) | (known >= self.codebook_size))[keep].any():
            raise NarError("known tokens must be codebook ids")
        return known, keep

    # ---- (de)serialisation --------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {"kind": "prior", "name": self.name, "config": to_dict(self.cfg),
                "codebook_size": self.codebook_size, "num_classes": self.num_classes,
                "train_grid": list(self.train_grid)}

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> "Prior":
        cfg = from_dict(cls.config_cls, meta["config"])
        return cls(cfg, meta["codebook_size"], meta.get("num_classes", 0), tuple(meta["train_grid"]))
