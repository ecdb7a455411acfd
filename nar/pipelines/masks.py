"""Inpainting geometry: pixel masks and boxes -> latent keep-masks, padding, seam blending.

Mask convention: white (>= 128) marks pixels to REGENERATE, black marks pixels to keep.
A latent token is kept only if every pixel of its f×f block is kept (logical AND, SUNDAE
paper §3.5), so regenerated tokens always cover the whole masked area.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import reduce

from nar.core.errors import NarError
from nar.core.images import load_image

__all__ = ["parse_box", "load_mask", "latent_keep_mask", "seam_alpha", "pad_to_multiple", "downscale_for_fill"]


def parse_box(text: str, width: int, height: int) -> np.ndarray:
    """'x0,y0,x1,y1' (pixels, x1/y1 exclusive) -> (H, W) bool regenerate-mask."""
    try:
        x0, y0, x1, y1 = (int(v) for v in text.split(","))
    except ValueError:
        raise NarError(f"a box must be x0,y0,x1,y1 in pixels, got {text!r}") from None
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise NarError(f"box {text} is empty or outside the {width}x{height} image")
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def load_mask(path: str | Path, width: int, height: int) -> np.ndarray:
    """A mask PNG of the image's size -> (H, W) bool regenerate-mask (white = regenerate)."""
    img = load_image(path).convert("L")
    if img.size != (width, height):
        raise NarError(f"mask {path} is {img.size[0]}x{img.size[1]}, the image is {width}x{height}")
    return np.asarray(img) >= 128


def latent_keep_mask(regenerate: np.ndarray, factor: int) -> torch.Tensor:
    """(H, W) pixel regenerate-mask (H, W multiples of f) -> (h, w) bool keep-mask:
    a token is kept only when all f×f pixels of its block are kept."""
    keep = torch.from_numpy(~regenerate)
    return reduce(keep, "(h f1) (w f2) -> h w", "min", f1=factor, f2=factor).bool()


def seam_alpha(regenerate: np.ndarray, feather: int) -> np.ndarray:
    """Weight of the ORIGINAL pixels: exactly 1 where kept, then a linear ramp inside the
    regenerated region, 1 - d / (feather + 1) at chessboard distance d from the nearest kept
    pixel, reaching 0 after ``feather`` pixels (so kept pixels are never altered, and the first
    regenerated pixel differs from its kept neighbour by 1/(feather+1) of the mismatch)."""
    keep = torch.from_numpy(~regenerate).float()[None, None]
    alpha = keep.clone()
    reach = keep
    for d in range(1, feather + 1):   # grow the kept region one ring per step
        grown = F.max_pool2d(reach, 3, stride=1, padding=1)
        ring = (grown > 0) & (reach == 0)
        alpha[ring] = 1 - d / (feather + 1)
        reach = grown
    return alpha[0, 0].numpy()


def pad_to_multiple(image: np.ndarray, regenerate: np.ndarray, factor: int):
    h, w = regenerate.shape
    ph, pw = (-h) % factor, (-w) % factor
    image = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge")
    # padded pixels count as kept so they never force a real block to be regenerated
    regenerate = np.pad(regenerate, ((0, ph), (0, pw)), constant_values=False)
    return image, regenerate


def downscale_for_fill(image: np.ndarray, regenerate: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 image and (H, W) regenerate-mask -> both at 1/scale (sides rounded up, the
    image edge-padded first): the image box-averaged, the mask marking every cell that holds a
    regenerated pixel, so the small fill covers all of the region. ``scale`` 1: unchanged."""
    if scale == 1:
        return image, regenerate
    padded, regen = pad_to_multiple(image, regenerate, scale)
    small = reduce(padded.astype(np.float64), "(h a) (w b) c -> h w c", "mean", a=scale, b=scale)
    cells = reduce(regen.astype(np.uint8), "(h a) (w b) -> h w", "max", a=scale, b=scale)
    return np.round(small).astype(np.uint8), cells.astype(bool)
