"""Seam harmonisation for inpainting: make the regenerated region meet the kept pixels.

The regenerated pixels come from the decoder, the kept ones from the user's image. Even where
the tokens agree across the border, the decoder's reconstruction differs from the original
(colour shift, softer detail), so pasting the decoded region in leaves a visible frame. The fix
is Poisson-style in spirit: measure the residual ``original - decoded`` in a band of kept pixels
around the region, fill it smoothly into the region (a push-pull pyramid: the membrane that
interpolates the band's residual), and add it to the decoded pixels. At the border the result
equals the original; deep inside it is the decoded image shifted by a smooth field.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from nar.sampling.fill import shift_grid

__all__ = ["harmonize_seam", "push_pull_fill", "fill_from_kept", "extend_from_kept", "border_ratio"]


def push_pull_fill(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Fill (C, H, W) ``values`` where ``weights`` (H, W) is 0 from where it is > 0, smoothly.

    Push: sum-pool values·weights and weights down a pyramid until every coarse cell has
    support. Pull: at each finer level, cells with full support keep their own average, the
    rest take the bilinearly upsampled coarser estimate, blended by their support."""
    v = (values * weights)[None]                     # (1, C, H, W)
    w = weights[None, None].to(values.dtype)         # (1, 1, H, W)
    pyramid = [(v, w)]
    while min(v.shape[-2:]) > 1 and not bool((w > 0).all()):
        v = F.avg_pool2d(v, 2, ceil_mode=True) * 4
        w = F.avg_pool2d(w, 2, ceil_mode=True) * 4
        pyramid.append((v, w))
    v, w = pyramid[-1]
    filled = torch.where(w > 0, v / w.clamp(min=1e-12), v.new_zeros(()))
    for v, w in reversed(pyramid[:-1]):
        up = F.interpolate(filled, size=v.shape[-2:], mode="bilinear", align_corners=False)
        own = v / w.clamp(min=1e-12)
        alpha = w.clamp(max=1.0)
        filled = alpha * own + (1 - alpha) * up
    return filled[0]


def fill_from_kept(image: np.ndarray, regenerate: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 image with its masked pixels replaced by a smooth fill from the kept
    ones (push-pull): what the encoder and the seam blend see instead of the original under
    the mask, so nothing of it reaches the result (the encoder's receptive field would
    otherwise carry it into the kept tokens around the hole)."""
    regen = torch.from_numpy(regenerate.astype(bool))
    if not bool(regen.any()) or bool(regen.all()):
        return image.copy()
    values = rearrange(torch.from_numpy(image.astype(np.float32)), "h w c -> c h w")
    filled = rearrange(push_pull_fill(values, (~regen).float()), "c h w -> h w c").numpy()
    out = np.where(regenerate[..., None], np.round(filled).clip(0, 255), image)
    return out.astype(np.uint8)


def extend_from_kept(image: np.ndarray, regenerate: np.ndarray, rings: int) -> np.ndarray:
    """(H, W, 3) uint8 -> float copy whose first ``rings`` pixel rings inside the mask repeat
    their nearest kept neighbour, ring by ring (the kept texture, carried across the border
    rather than averaged away). Deeper masked pixels are left as they are; kept pixels too."""
    out = rearrange(torch.from_numpy(image.astype(np.float32)), "h w c -> c h w")
    known = torch.from_numpy(~regenerate.astype(bool))
    offsets = ((0, -1), (0, 1), (-1, 0), (1, 0), (-1, -1), (-1, 1), (1, -1), (1, 1))
    for _ in range(rings):
        value, taken = out.clone(), known.clone()
        for dy, dx in offsets:   # first known neighbour in this order gives the value
            use = shift_grid(known, dy, dx, False) & ~taken
            value = torch.where(use, shift_grid(out, dy, dx, 0.0), value)
            taken |= use
        if bool((taken == known).all()):
            break
        out, known = value, taken
    return rearrange(out, "c h w -> h w c").numpy()


def harmonize_seam(original: np.ndarray, generated: np.ndarray, regenerate: np.ndarray,
                   band: int = 16) -> np.ndarray:
    """(H, W, 3) uint8 ``original`` and decoded ``generated``, (H, W) bool ``regenerate`` ->
    the generated pixels corrected by the smooth residual field, as float (H, W, 3) in 0..255.

    ``band``: width in pixels of the ring of kept pixels whose residual is measured (about one
    tokenizer cell: far-away kept pixels say nothing about the seam)."""
    orig = torch.from_numpy(original.astype(np.float32))
    gen = torch.from_numpy(generated.astype(np.float32))
    regen = torch.from_numpy(regenerate.astype(bool))
    if not bool(regen.any()) or bool(regen.all()):
        return gen.numpy()
    # kept pixels within `band` of the region: dilate the region by max-pooling
    near = F.max_pool2d(regen[None, None].float(), 2 * band + 1, stride=1, padding=band)[0, 0] > 0
    ring = near & ~regen
    residual = rearrange(orig - gen, "h w c -> c h w")
    correction = push_pull_fill(residual, ring.float())
    return (gen + rearrange(correction, "c h w -> h w c")).clamp(0, 255).numpy()


def border_ratio(image: np.ndarray, regenerate: np.ndarray) -> float:
    """Mean |luminance difference| across the region's border ÷ the mean across all other
    neighbouring pixel pairs (the block ratio, at the inpainting border): ≈1 when the border
    is invisible, above 1 for a visible frame."""
    luma = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    regen = regenerate.astype(bool)
    dx, dy = np.abs(np.diff(luma, axis=1)), np.abs(np.diff(luma, axis=0))
    cross_x, cross_y = regen[:, 1:] != regen[:, :-1], regen[1:, :] != regen[:-1, :]
    edge = np.concatenate([dx[cross_x], dy[cross_y]])
    rest = np.concatenate([dx[~cross_x], dy[~cross_y]])
    if edge.size == 0 or rest.mean() == 0:
        return 1.0
    return float(edge.mean() / rest.mean())
