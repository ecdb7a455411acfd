"""Image I/O, the one copy: files <-> PIL images <-> arrays <-> tensors, PNG with metadata, grids.

Convention: model-side images are float tensors (3, H, W) or (B, 3, H, W) in [-1, 1];
file-side images are RGB PIL images or (H, W, 3) uint8 arrays. PNGs are written atomically.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from nar.core.checkpoint import atomic_write_bytes
from nar.core.errors import NarError

LUMA = (0.299, 0.587, 0.114)   # Rec. 601 luminance weights of R, G, B


def cell_boundary_steps(luma: torch.Tensor, cell: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image (B,): mean |difference| between neighbouring pixels across every ``cell``-th pixel
    boundary (boundary k lies between pixels k and k+1; cell edges are k = cell-1, 2·cell-1, ...),
    and mean |difference| across all other boundaries, both directions. luma: (B, H, W). Their
    quotient is the block ratio (`nar.eval.sharpness.block_ratio`, the tokenizer's seam loss)."""
    dx = (luma[..., :, 1:] - luma[..., :, :-1]).abs()
    dy = (luma[..., 1:, :] - luma[..., :-1, :]).abs()
    on_x = (torch.arange(dx.shape[-1], device=luma.device) % cell) == cell - 1
    on_y = (torch.arange(dy.shape[-2], device=luma.device) % cell) == cell - 1
    h, w = luma.shape[-2:]
    n_edge = h * int(on_x.sum()) + w * int(on_y.sum())
    n_rest = h * int((~on_x).sum()) + w * int((~on_y).sum())
    edge = dx[..., on_x].sum((-2, -1)) + dy[..., on_y, :].sum((-2, -1))
    rest = dx[..., ~on_x].sum((-2, -1)) + dy[..., ~on_y, :].sum((-2, -1))
    return edge / max(n_edge, 1), rest / max(n_rest, 1)

__all__ = ["load_image", "as_rgb", "array_to_tensor", "to_tensor", "tensor_to_array", "to_pil", "to_uint8",
           "png_bytes", "save_png", "make_grid", "row_grid", "save_grid"]


# ---- files -> images ------------------------------------------------------------------------
def load_image(path: str | Path) -> Image.Image:
    """Open an image file as RGB, fully decoded; ``NarError`` if it cannot be read."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            return as_rgb(ImageOps.exif_transpose(img))  # phones store rotation in EXIF
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise NarError(f"cannot read image {path}: {reason}") from None


def as_rgb(img: Image.Image) -> Image.Image:
    """RGB copy; transparent pixels are composited over white rather than turned black."""
    if img.mode.startswith("I;16") or img.mode == "I":  # 16-bit grey: scale, don't clip
        grey = (np.asarray(img, dtype=np.float32) / 257.0).clip(0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


# ---- arrays <-> tensors ---------------------------------------------------------------------
def array_to_tensor(array: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 array → float32 tensor (3, H, W) in [-1, 1]."""
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {array.dtype} {array.shape}")
    if not (array.flags.writeable and array.flags.c_contiguous):
        array = np.array(array)  # torch wants a writable, contiguous buffer
    x = torch.from_numpy(array).permute(2, 0, 1).float()
    return x.div_(127.5).sub_(1.0)


def to_tensor(img: Image.Image | np.ndarray) -> torch.Tensor:
    """RGB PIL image (or (H, W, 3) uint8 array) → float32 tensor (3, H, W) in [-1, 1]."""
    if isinstance(img, Image.Image):
        img = np.asarray(as_rgb(img) if img.mode != "RGB" else img)
    return array_to_tensor(img)


def tensor_to_array(x: torch.Tensor) -> np.ndarray:
    """Tensor (3, H, W) in [-1, 1] → (H, W, 3) uint8 array (values outside are clipped)."""
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) tensor, got shape {tuple(x.shape)}")
    return to_uint8(x[None])[0]


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return rearrange(x, "b c h w -> b h w c").cpu().numpy()


def to_pil(x: torch.Tensor) -> Image.Image:
    """Tensor (3, H, W) in [-1, 1] → RGB PIL image."""
    return Image.fromarray(tensor_to_array(x))


# ---- PNG files ------------------------------------------------------------------------------
def png_bytes(array: np.ndarray, metadata: dict[str, str] | None = None) -> bytes:
    info = PngInfo()
    for key, value in (metadata or {}).items():
        info.add_text(key, str(value))
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def save_png(image: np.ndarray | Image.Image, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write an (H, W, 3) uint8 array or a PIL image as PNG (atomically), with text metadata."""
    array = np.asarray(image) if isinstance(image, Image.Image) else image
    atomic_write_bytes(path, png_bytes(array, metadata))
    return Path(path)


# ---- grids ----------------------------------------------------------------------------------
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


def row_grid(rows: list[torch.Tensor]) -> np.ndarray:
    """[(B, 3, H, W) in [-1, 1], ...] -> one uint8 image, one row per tensor, B columns, no gutters
    (e.g. inputs above their reconstructions)."""
    stacked = torch.stack([r.detach().float().cpu().clamp(-1, 1) for r in rows])   # (R, B, 3, H, W)
    grid = rearrange(stacked, "r b c h w -> (r h) (b w) c")
    return ((grid + 1) * 127.5).round().to(torch.uint8).numpy()


def save_grid(images: torch.Tensor | np.ndarray, path: str | Path, nrow: int | None = None,
              metadata: dict[str, str] | None = None, max_side: int = 4096) -> Path:
    """A grid of (B, 3, H, W) tensors in [-1, 1] (or (B, H, W, 3) uint8 arrays) as one PNG,
    scaled down to at most ``max_side`` pixels (keeps grids of 1024² samples viewable)."""
    arrays = to_uint8(images) if torch.is_tensor(images) else np.asarray(images)
    grid = make_grid(arrays, nrow)
    if max(grid.shape[:2]) > max_side:
        scale = max_side / max(grid.shape[:2])
        img = Image.fromarray(grid).resize((int(grid.shape[1] * scale), int(grid.shape[0] * scale)),
                                           Image.Resampling.LANCZOS)
        grid = np.asarray(img)
    return save_png(grid, path, metadata)


def gradient_activity(image: torch.Tensor) -> float:
    """Mean |finite difference| of a (C, H, W) image: how much edge it holds."""
    return float(image.diff(dim=-1).abs().mean() + image.diff(dim=-2).abs().mean())


def crop_placements(n: int, candidates: int, generator: torch.Generator) -> list[list[list[int]]]:
    """Random placements for ``n`` crops, ``candidates`` each: ``[top, left, flip]`` draws in
    [0, 2**30), to be reduced modulo the image. One candidate per crop draws exactly what an
    (n, 3) draw did before candidates existed, so runs started then resume unchanged."""
    if candidates == 1:
        return [[draw] for draw in torch.randint(2 ** 30, (n, 3), generator=generator).tolist()]
    return torch.randint(2 ** 30, (n, candidates, 3), generator=generator).tolist()


def busiest(crops: list, key=lambda crop: crop) -> object:
    """The candidate crop with the most edge (``key`` picks the image to judge from a candidate).

    Training crops drawn uniformly are mostly smooth sky and ground, which a decoder or an
    upscaler already gets right; the busiest of k random placements puts edges in front of it."""
    return max(crops, key=lambda crop: gradient_activity(key(crop)))
