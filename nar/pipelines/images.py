"""Image I/O for pipelines: tensors in [-1, 1] <-> PNG files, grids, metadata."""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from nar.core.checkpoint import atomic_write_bytes


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return rearrange(x, "b c h w -> b h w c").cpu().numpy()


def png_bytes(array: np.ndarray, metadata: dict[str, str] | None = None) -> bytes:
    info = PngInfo()
    for key, value in (metadata or {}).items():
        info.add_text(key, str(value))
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def save_png(array: np.ndarray, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    atomic_write_bytes(path, png_bytes(array, metadata))
    return Path(path)


def make_grid(arrays: np.ndarray, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """(B, H, W, 3) uint8 -> one (rows*H, cols*W, 3) image with white gutters."""
    b, h, w, _ = arrays.shape
    cols = nrow or math.ceil(math.sqrt(b))
    rows = math.ceil(b / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, dtype=np.uint8)
    for i, img in enumerate(arrays):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y:y + h, x:x + w] = img
    return grid


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None,
              metadata: dict[str, str] | None = None, max_side: int = 4096) -> Path:
    arrays = to_uint8(images)
    grid = make_grid(arrays, nrow)
    if max(grid.shape[:2]) > max_side:  # keep grids of 1024² samples viewable
        scale = max_side / max(grid.shape[:2])
        img = Image.fromarray(grid).resize((int(grid.shape[1] * scale), int(grid.shape[0] * scale)),
                                           Image.Resampling.LANCZOS)
        grid = np.asarray(img)
    return save_png(grid, path, metadata)
