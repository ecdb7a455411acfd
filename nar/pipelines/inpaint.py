"""Inpainting: image + pixel mask -> latent keep-mask -> prior.sample(known, keep) -> blend.

Mask convention: white (>= 128) marks pixels to REGENERATE, black marks pixels to keep.
A latent token is kept only if every pixel of its f×f block is kept (logical AND, SUNDAE
paper §3.5), so regenerated tokens always cover the whole masked area.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange, reduce

from nar.core.errors import NarError
from nar.pipelines.images import save_png, to_uint8
from nar.pipelines.sample import Generator, SampleSettings
from nar.sampling.filters import validate_sampling_args


def parse_box(text: str, width: int, height: int) -> np.ndarray:
    """'x0,y0,x1,y1' (pixels, x1/y1 exclusive) -> (H, W) bool regenerate-mask."""
    try:
        x0, y0, x1, y1 = (int(v) for v in text.split(","))
    except ValueError:
        raise NarError(f"--box must be x0,y0,x1,y1 in pixels, got {text!r}") from None
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise NarError(f"--box {text} is empty or outside the {width}x{height} image")
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def load_mask(path: str | Path, width: int, height: int) -> np.ndarray:
    """A mask PNG of the image's size -> (H, W) bool regenerate-mask (white = regenerate)."""
    from nar.data.transforms import load_image
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
    """Weight of the ORIGINAL pixels: exactly 1 where kept, fading to 0 over ``feather``
    pixels inside the regenerated region (so kept pixels are never altered)."""
    keep = torch.from_numpy(~regenerate).float()[None, None]
    if feather > 0:
        k = 2 * feather + 1
        soft = F.avg_pool2d(F.pad(keep, (feather,) * 4, mode="replicate"), k, stride=1)
        keep = torch.maximum(keep, soft)
    return keep[0, 0].numpy()


def pad_to_multiple(image: np.ndarray, regenerate: np.ndarray, factor: int):
    h, w = regenerate.shape
    ph, pw = (-h) % factor, (-w) % factor
    image = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge")
    # padded pixels count as kept so they never force a real block to be regenerated
    regenerate = np.pad(regenerate, ((0, ph), (0, pw)), constant_values=False)
    return image, regenerate


def run_inpaint(prior: str, image_path: str | Path, out_path: str | Path, mask_path=None, box: str | None = None,
                steps: int | None = None, temperature: float = 1.0, seed: int = 0, class_label: str | None = None,
                cfg: float = 1.0, feather: int = 4, ckpt=None, tokenizer=None, device: str = "auto",
                overwrite: bool = False, options: dict | None = None, log=print) -> dict:
    from nar.data.transforms import load_image

    validate_sampling_args(steps=steps, temperature=temperature)
    image_path, out_path = Path(image_path), Path(out_path)
    if out_path.resolve() == image_path.resolve():
        raise NarError("--out must not be the input image (nar never overwrites your files)")
    if out_path.exists() and not overwrite:
        raise NarError(f"{out_path} exists; pick another --out or pass --overwrite")
    if (mask_path is None) == (box is None):
        raise NarError("give exactly one of --mask MASK.png or --box x0,y0,x1,y1")
    original = np.asarray(load_image(image_path))
    height, width = original.shape[:2]
    regenerate = load_mask(mask_path, width, height) if mask_path else parse_box(box, width, height)
    if not regenerate.any():
        raise NarError("the mask is empty: nothing to regenerate (white = regenerate)")

    gen = Generator.load(prior, ckpt, tokenizer, device, decode_only=False)
    f = gen.factor
    # pad to whole tokens, and to whole hourglass patches for priors that need them
    padded, regen_padded = pad_to_multiple(original, regenerate, f * gen.prior.grid_multiple)
    grid = gen.prior.check_grid((padded.shape[0] // f, padded.shape[1] // f))
    x = torch.from_numpy(padded).float().div(127.5).sub(1)
    x = rearrange(x, "h w c -> 1 c h w").to(gen.device)
    with torch.inference_mode():
        known = gen.tokenizer.encode(x)
    keep = latent_keep_mask(regen_padded, f)[None].to(gen.device)

    settings = SampleSettings(prior=prior, n=1, steps=steps, temperature=temperature, seed=seed,
                              class_label=class_label, cfg=cfg, options=options or {})
    out = gen.sample_tokens(settings, grid, gen.resolve_class(class_label), known=known, keep=keep)
    generated = to_uint8(gen.decode(out.tokens))[0][:height, :width]

    alpha = seam_alpha(regenerate, feather)[..., None]
    blended = alpha * original.astype(np.float64) + (1 - alpha) * generated.astype(np.float64)
    result = np.where(regenerate[..., None], np.round(blended), original).astype(np.uint8)
    info = {"prior": prior, "steps": steps, "steps_run": out.steps_run, "seed": seed,
            "tokens_regenerated": int((~keep).sum()), "tokens_total": grid[0] * grid[1],
            "image": str(image_path)}
    save_png(result, out_path, {"nar": json.dumps(info)})
    log(f"inpainted {info['tokens_regenerated']}/{info['tokens_total']} tokens with {prior} "
        f"({out.steps_run} step(s)) -> {out_path}")
    return {**info, "out": str(out_path)}
