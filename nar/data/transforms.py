"""Small image helpers shared by datasets and commands (inpaint, reconstruct, sample).

Convention: model-side images are float tensors (3, H, W) in [-1, 1]; file-side images
are RGB PIL images or (H, W, 3) uint8 arrays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from nar.core.errors import NarError


def load_image(path: str | Path) -> Image.Image:
    """Open an image file as RGB, fully decoded; ``NarError`` if it cannot be read."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            return _as_rgb(ImageOps.exif_transpose(img))  # phones store rotation in EXIF
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise NarError(f"cannot read image {path}: {reason}") from None


def _as_rgb(img: Image.Image) -> Image.Image:
    """RGB copy; transparent pixels are composited over white rather than turned black."""
    if img.mode.startswith("I;16") or img.mode == "I":  # 16-bit grey: scale, don't clip
        grey = (np.asarray(img, dtype=np.float32) / 257.0).clip(0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


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
        img = np.asarray(_as_rgb(img) if img.mode != "RGB" else img)
    return array_to_tensor(img)


def tensor_to_array(x: torch.Tensor) -> np.ndarray:
    """Tensor (3, H, W) in [-1, 1] → (H, W, 3) uint8 array (values outside are clipped)."""
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) tensor, got shape {tuple(x.shape)}")
    x = x.detach().to("cpu", torch.float32)
    x = ((x + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
    return x.permute(1, 2, 0).contiguous().numpy()


def to_pil(x: torch.Tensor) -> Image.Image:
    """Tensor (3, H, W) in [-1, 1] → RGB PIL image."""
    return Image.fromarray(tensor_to_array(x))


def resize_shorter_side(img: Image.Image, size: int) -> Image.Image:
    """Scale so the shorter side is ``size`` (bicubic; Pillow antialiases when shrinking)."""
    w, h = img.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    if (new_w, new_h) == (w, h):
        return img
    return img.resize((new_w, new_h), Image.Resampling.BICUBIC)


def resize_and_crop(img: Image.Image, size: int, box: tuple[int, int] | None = None
                    ) -> Image.Image:
    """Resize the shorter side to ``size``, then crop size×size.

    ``box`` is the (top, left) of the crop in the resized image; default: centred.
    """
    img = resize_shorter_side(img, size)
    w, h = img.size
    top, left = box if box is not None else ((h - size) // 2, (w - size) // 2)
    return img.crop((left, top, left + size, top + size))
