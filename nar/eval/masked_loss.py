"""Held-out masked-token loss of a `maskgit` prior: the cross-entropy maskgit trains on, without
label smoothing, on grids it never saw, at fixed mask ratios.

It compares checkpoints of any maskgit network (hourglass or raster layout, any depth) on one
footing: the same cells are masked for every checkpoint (a seeded draw per ratio), each grid is
conditioned on its own class, and a network that moves its patch grid (``shift_patches``) is
scored at two patch offsets and averaged, as it samples. A low ratio reads how well a model
completes detail from a mostly known grid (MaskGIT's last steps), a high one how well it lays
out a scene from little (its first steps).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from nar.core.errors import ArgumentError

RATIOS = (0.15, 0.5, 0.85)


def masked_cells(n: int, cells: int, ratio: float, seed: int = 1) -> torch.Tensor:
    """(n, cells) bool: ceil(ratio * cells) cells of each row, drawn from ``seed`` alone, so every
    checkpoint scored with the same seed predicts the same cells."""
    if not 0.0 < ratio <= 1.0:
        raise ArgumentError("ratio", f"masked loss: a mask ratio must be in (0, 1], got {ratio}")
    scores = torch.rand(n, cells, generator=torch.Generator().manual_seed(seed))
    return scores.argsort(dim=1).argsort(dim=1) < math.ceil(ratio * cells)


@torch.no_grad()
def masked_token_loss(prior, tokens: torch.Tensor, labels: torch.Tensor, ratios=RATIOS, seed: int = 1,
                      batch_size: int = 16) -> dict[float, float]:
    """Mean cross-entropy (nats per masked token) of ``prior`` on tokens (n, h, w) with classes
    labels (n,), per mask ratio."""
    n, h, w = tokens.shape
    ids = tokens.reshape(n, h * w).long().to(prior.device)
    labels = labels.long().to(prior.device)
    shifts = ((0, 0), (1, 1)) if getattr(prior.cfg, "shift_patches", False) else ((0, 0),)
    out = {}
    for ratio in ratios:
        masked = masked_cells(n, h * w, ratio, seed).to(prior.device)
        total = 0.0
        for shift in shifts:
            for start in range(0, n, batch_size):
                x, m = ids[start: start + batch_size], masked[start: start + batch_size]
                logits = prior(x.masked_fill(m, prior.mask_id), labels[start: start + batch_size], (h, w),
                               select=m, shift=shift)[:, : prior.codebook_size]
                total += F.cross_entropy(logits.float(), x[m], reduction="sum").item()
        out[ratio] = total / (len(shifts) * int(masked.sum()))
    return out
