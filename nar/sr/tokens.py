"""Super-resolution in token space (Muse's super-resolution stage): a 2x finer token grid given a coarse one.

A pixel SR net can only sharpen what a decoded 32x32 grid shows, and the detail the coarse tokens
do not hold is not in its input: trained with L1 it averages it away. This net instead predicts the
64x64 tokens the tokenizer would give the same scene at twice the size, as a distribution over
codes per cell, and its draws decode at full size through the tokenizer's own (GAN-sharpened)
decoder, so the missing detail is drawn, not averaged.

Layout: coarse tokens -> embedding -> residual convs at the coarse size -> 1x1 conv + pixel shuffle
to the fine size -> + the fine tokens' embedding (a mask id where unknown) -> residual convs at the
fine size -> logits over the codes. It is fully convolutional, so it trains on crops and runs on
any grid. Trained with MaskGIT's objective (a cosine-drawn share of the fine tokens masked, cross
entropy on them); drawn with MaskGIT's confidence-ordered parallel decoding in a few steps.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from nar.core.errors import NarError
from nar.sampling.filters import gumbel_noise, sample_logits
from nar.sampling.schedules import mask_counts


@dataclass
class TokenSRConfig:
    codebook_size: int = 512
    dim: int = 96               # width of both trunks
    coarse_blocks: int = 2      # residual blocks at the coarse grid
    fine_blocks: int = 4        # residual blocks at the fine grid
    groups: int = 8             # GroupNorm groups
    scale: int = 2

    def validate(self) -> "TokenSRConfig":
        if self.codebook_size < 2 or self.dim < 1 or self.coarse_blocks < 0 or self.fine_blocks < 1:
            raise NarError("token sr: codebook_size >= 2, dim >= 1, coarse_blocks >= 0, fine_blocks >= 1")
        if self.dim % self.groups or self.scale < 2:
            raise NarError(f"token sr: dim ({self.dim}) must divide into {self.groups} groups; scale >= 2")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


class ResBlock(nn.Module):
    def __init__(self, dim: int, groups: int):
        super().__init__()
        self.body = nn.Sequential(nn.GroupNorm(groups, dim), nn.SiLU(), nn.Conv2d(dim, dim, 3, padding=1),
                                  nn.GroupNorm(groups, dim), nn.SiLU(), nn.Conv2d(dim, dim, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TokenUpsampler(nn.Module):
    def __init__(self, cfg: TokenSRConfig):
        super().__init__()
        self.cfg = cfg.validate()
        d, k, s = cfg.dim, cfg.codebook_size, cfg.scale
        self.mask_id = k
        self.coarse_embed = nn.Embedding(k, d)
        self.coarse = nn.Sequential(*[ResBlock(d, cfg.groups) for _ in range(cfg.coarse_blocks)])
        self.to_fine = nn.Conv2d(d, d * s * s, 1)
        self.fine_embed = nn.Embedding(k + 1, d)
        self.fine = nn.Sequential(*[ResBlock(d, cfg.groups) for _ in range(cfg.fine_blocks)])
        self.to_logits = nn.Sequential(nn.GroupNorm(cfg.groups, d), nn.SiLU(), nn.Conv2d(d, k, 1))

    def forward(self, coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        """coarse (B, h, w) ids, fine (B, s*h, s*w) ids or mask_id -> logits (B, K, s*h, s*w)."""
        s = self.cfg.scale
        if fine.shape[-2:] != (coarse.shape[-2] * s, coarse.shape[-1] * s):
            raise NarError(f"token sr: a {tuple(coarse.shape[-2:])} coarse grid needs a {s}x fine grid, "
                           f"got {tuple(fine.shape[-2:])}")
        x = rearrange(self.coarse_embed(coarse), "b h w d -> b d h w")
        x = self.to_fine(self.coarse(x))
        x = rearrange(x, "b (d p q) h w -> b d (h p) (w q)", p=s, q=s)
        x = x + rearrange(self.fine_embed(fine), "b h w d -> b d h w")
        return self.to_logits(self.fine(x))

    def loss(self, coarse: torch.Tensor, fine: torch.Tensor, generator: torch.Generator | None = None
             ) -> torch.Tensor:
        """MaskGIT's objective: per grid, a share cos(pi/2 u) (u uniform) of the fine tokens masked;
        cross entropy on the masked ones."""
        b = fine.shape[0]
        n = fine[0].numel()
        u = torch.rand(b, generator=generator, device=fine.device)
        count = (torch.cos(u * math.pi / 2) * n).ceil().clamp(1, n)                       # (B,)
        ranks = torch.rand(fine.shape, generator=generator, device=fine.device).flatten(1).argsort(1).argsort(1)
        masked = (ranks < count[:, None]).view_as(fine)
        logits = self(coarse, torch.where(masked, torch.full_like(fine, self.mask_id), fine))
        return F.cross_entropy(rearrange(logits, "b k h w -> b h w k")[masked], fine[masked])

    @torch.no_grad()
    def sample(self, coarse: torch.Tensor, steps: int = 4, temperature: float = 1.0, choice_temperature: float = 2.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """coarse (B, h, w) -> fine (B, s*h, s*w): MaskGIT decoding from an all-masked grid; each step
        draws every unknown token, keeps the most confident (Gumbel-perturbed, annealed) ones."""
        if steps < 1:
            raise NarError(f"token sr: steps must be >= 1, got {steps}")
        s = self.cfg.scale
        b, h, w = coarse.shape
        fine = torch.full((b, h * s, w * s), self.mask_id, dtype=torch.long, device=coarse.device)
        n = fine[0].numel()
        still_masked = mask_counts(n, steps)      # tokens left masked after each step, last 0
        for step, left in enumerate(still_masked):
            unknown = fine == self.mask_id
            logits = rearrange(self(coarse, fine).float(), "b k h w -> b h w k")
            drawn = sample_logits(logits, temperature, generator=generator)
            confidence = logits.log_softmax(-1).gather(-1, drawn[..., None])[..., 0]
            anneal = choice_temperature * (1 - (step + 1) / len(still_masked))
            confidence = confidence + anneal * gumbel_noise(confidence.shape, generator, coarse.device)
            confidence = confidence.masked_fill(~unknown, float("inf"))     # known tokens stay
            order = confidence.flatten(1).argsort(1, descending=True).argsort(1).view_as(fine)
            keep = order < (n - left)
            fine = torch.where(keep & unknown, drawn, fine)
        return fine
