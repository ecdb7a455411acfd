"""Sharpness and blockiness of images: the numbers that FD and PSNR miss.

All measures work on luminance in 0..255 units (ITU-R BT.601 weights) of images given as
(B, 3, H, W) floats in [-1, 1]:

- ``gradient_energy``: mean |finite difference| over horizontal and vertical neighbours.
  A blurred image has less of it than the real one; so does a flat one.
- ``high_freq_share``: share of spectral power (DC excluded) above a fraction of Nyquist
  (default ¼, radially). Blur removes it, texture noise adds it.
- ``block_ratio(B)``: mean |difference| across every B-th pixel boundary ÷ mean |difference|
  across all other boundaries. ≈1 for natural images; above 1 for an image built of visible
  B×B squares (a tokenizer's f×f cells, a prior's merged patches, tile seams).

``sharpness_report`` gathers them, and ``relative_to`` divides by a real-image reference row,
which is how the quality tables print them ("gradient energy 0.8× real").
"""
from __future__ import annotations

from typing import Iterable

import torch

from nar.core.images import LUMA, cell_boundary_steps


def luminance(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W) luminance in 0..255, float64 for stable sums."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
    weights = torch.tensor(LUMA, dtype=torch.float64, device=images.device).view(1, 3, 1, 1)
    rgb = (images.double().clamp(-1, 1) + 1) * 127.5
    return (rgb * weights).sum(1)


def _abs_diffs(luma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """|differences| across vertical boundaries (B, H, W-1) and horizontal ones (B, H-1, W)."""
    return (luma[..., :, 1:] - luma[..., :, :-1]).abs(), (luma[..., 1:, :] - luma[..., :-1, :]).abs()


def gradient_energy(images: torch.Tensor) -> float:
    """Mean |luminance difference| between neighbouring pixels (both directions)."""
    dx, dy = _abs_diffs(luminance(images))
    return float((dx.sum() + dy.sum()) / (dx.numel() + dy.numel()))


def high_freq_share(images: torch.Tensor, cutoff: float = 0.25) -> float:
    """Share of the (DC-free) power spectrum above ``cutoff`` × Nyquist, radially."""
    luma = luminance(images)
    luma = luma - luma.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.rfft2(luma).abs().pow(2)                           # (B, H, W//2+1)
    h, w = luma.shape[-2:]
    fy = torch.fft.fftfreq(h, device=luma.device, dtype=torch.float64).abs() * 2   # 1.0 = Nyquist
    fx = torch.fft.rfftfreq(w, device=luma.device, dtype=torch.float64) * 2
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    total = power.sum()
    if total <= 0:
        return 0.0
    return float(power[..., radius > cutoff].sum() / total)


def block_ratio(images: torch.Tensor, block: int) -> float:
    """Mean |difference| across every ``block``-th pixel boundary ÷ mean across the others."""
    if block < 2:
        raise ValueError(f"block must be at least 2, got {block}")
    h, w = images.shape[-2:]
    if h <= block and w <= block:
        raise ValueError(f"images of {tuple(images.shape[-2:])} have no {block}-px block boundary")
    edge, rest = cell_boundary_steps(luminance(images), block)   # per image; every image the same size
    edge, rest = edge.mean(), rest.mean()
    if rest <= 0:
        return 1.0 if edge <= 0 else float("inf")
    return float(edge / rest)


def sharpness_report(images: torch.Tensor, blocks: Iterable[int] = (16,),
                     chunk: int = 8) -> dict[str, float]:
    """gradient energy, high-frequency share and block ratios of a set of images, averaged
    over images (computed ``chunk`` images at a time so 1024² sets stay small in memory)."""
    blocks = sorted(set(int(b) for b in blocks))
    totals: dict[str, float] = {}
    n = images.shape[0]
    for start in range(0, n, chunk):
        part = images[start:start + chunk]
        weight = part.shape[0] / n
        row = {"grad_energy": gradient_energy(part), "hf_share": high_freq_share(part)}
        row.update({f"block_ratio_{b}": block_ratio(part, b) for b in blocks})
        for key, value in row.items():
            totals[key] = totals.get(key, 0.0) + weight * value
    return totals


def relative_to(row: dict[str, float], real: dict[str, float]) -> dict[str, float]:
    """Gradient energy and HF share as multiples of the real-image row ("0.8× real")."""
    out = dict(row)
    for key in ("grad_energy", "hf_share"):
        if key in row and real.get(key):
            out[f"{key}_vs_real"] = row[key] / real[key]
    return out
