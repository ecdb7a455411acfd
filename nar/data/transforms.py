"""Dataset transforms (resize, crop). Image loading and tensor conversion live in
`nar.core.images`; the names below are re-exported from there for older imports."""

from __future__ import annotations

from PIL import Image

from nar.core.images import array_to_tensor, load_image, tensor_to_array, to_pil, to_tensor

__all__ = ["resize_shorter_side", "resize_and_crop",
           "array_to_tensor", "load_image", "tensor_to_array", "to_pil", "to_tensor"]


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
