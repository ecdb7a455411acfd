"""2x super-resolution of any image: `load_sr` (the shipped model or a run's checkpoint) and
`upscale(image, model=None, tile=None) -> image` (used by `nar upscale`, by `Pipeline.sample` and
`Pipeline.inpaint` for sizes above a prior's native one, e.g. 2048² from the 1024² set, and by `nar serve`).

Inference is tiled with overlap (``nar.tokenizer.tiling.tiled_apply``, blend "center": every
output pixel comes from the tile it lies deepest inside, with at least the net's receptive
radius of real context around it), so tiled and untiled outputs agree to float rounding and
memory is set by the tile, not the image.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from PIL import Image

from nar.core.checkpoint import load_checkpoint, read_meta
from nar.core.errors import ArgumentError, NarError
from nar.pipelines.models import MODELS_DIR
from nar.sr.model import SRModelConfig, SRNet

SR_FILE = "sr.safetensors"
TILE = 1024                      # low-res tile side (pixels) above which inference is tiled (1024² runs whole)
# Generated images: an unsharp mask after the first 2x pass (issue 13, session 39). The SR net
# sharpens true 512² renders (0.84x the real gradient energy at 1024²) and adds nothing over bicubic
# to decoded tokens (0.52x), whose detail the 32x32 tokens never held. The mask draws no detail; it
# steepens the edges the decode has (gradient 0.52 -> 0.63 for ar's draws at amount 1) and leaves
# the nar-feature FD unchanged to 0.01 (benchmarks/results/issue13/README.md, session 39).
SHARPEN = 1.0                    # amount: x + amount * (x - blur(x)); 0 turns it off
SHARPEN_SIGMA = 1.0              # Gaussian blur sigma, output pixels
MAX_INPUT_PIXELS = 4096 * 4096   # memory limit: a 16.8 MP input (67 MP output, ~0.8 GB as floats)

_cache: dict[tuple[str, str], SRNet] = {}


def default_sr_path() -> Path:
    return MODELS_DIR / SR_FILE


def resolve_sr_ckpt(ckpt: str | Path | None) -> Path:
    path = Path(ckpt) if ckpt is not None else default_sr_path()
    if not path.is_file():
        if ckpt is None:
            raise NarError(f"no super-resolution model installed at {path}; pass --sr-ckpt RUN/model.safetensors "
                           "from `nar sr train`")
        raise NarError(f"super-resolution checkpoint not found: {path}")
    return path


def load_sr(ckpt: str | Path | None = None, device: str | torch.device = "cpu") -> SRNet:
    """An SR net in eval mode, float32, channels-last (the fast layout for CPU convolutions).
    Loaded once per (path, device) and cached."""
    path = resolve_sr_ckpt(ckpt)
    key = (str(path.resolve()), str(device))
    if key not in _cache:
        meta = read_meta(path)
        if meta.get("kind") != "sr":
            raise NarError(f"{path} is not a super-resolution checkpoint (kind {meta.get('kind')!r})")
        tensors, meta = load_checkpoint(path)
        model = SRNet(SRModelConfig(**meta["config"]))
        model.load_state_dict({k: v.float() for k, v in tensors.items()})
        model.meta_info = meta
        model.source_path = path
        _cache[key] = model.eval().requires_grad_(False).to(device).to(memory_format=torch.channels_last)
    return _cache[key]


def tile_overlap(model: SRNet) -> int:
    """Overlap (low-res pixels) that leaves every output pixel its full receptive field."""
    return 8 * -(-(2 * model.receptive_radius + 4) // 8)


def upscale_tensor(images: torch.Tensor, model: SRNet, tile: int | None = TILE, passes: int = 1,
                   sharpen: float = 0.0) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, 3, sH, sW) float32 on the CPU, clamped to [-1, 1], the net run
    ``passes`` times (s = scale^passes). ``tile``: low-res tile side (None or 0: untiled; at least
    twice the overlap). ``sharpen``: `unsharp_mask` amount applied to the first pass's output
    (generated images: `SHARPEN`; 0 for true images, which the net sharpens itself)."""
    for i in range(passes):
        images = _upscale_once(images, model, tile)
        if i == 0 and sharpen:
            images = unsharp_mask(images, sharpen)
    return images


def resolve_sharpen(amount: float | None) -> float:
    """A sharpening amount as given (None: the default `SHARPEN`), checked to be >= 0."""
    amount = SHARPEN if amount is None else float(amount)
    if not amount >= 0:
        raise ArgumentError("sharpen", f"the sharpening amount must be >= 0 (got {amount})")
    return amount


def unsharp_mask(images: torch.Tensor, amount: float = SHARPEN, sigma: float = SHARPEN_SIGMA) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> images + amount * (images - gaussian_blur(images)), clamped to
    [-1, 1] (reflect padding at the borders); 8 images at a time to bound memory."""
    from torchvision.transforms.v2.functional import gaussian_blur
    amount = resolve_sharpen(amount)
    if amount == 0:
        return images
    radius = max(1, round(3 * sigma))
    # lerp(blur, x, 1 + a) = x + a (x - blur), in one pass
    out = [torch.lerp(gaussian_blur(x, [2 * radius + 1] * 2, [sigma, sigma]), x, 1.0 + amount).clamp_(-1, 1)
           for x in images.float().split(8)]
    return out[0] if len(out) == 1 else torch.cat(out)


def _upscale_once(images: torch.Tensor, model: SRNet, tile: int | None) -> torch.Tensor:
    from nar.tokenizer.tiling import tiled_apply
    device = next(model.parameters()).device

    def run(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device, torch.float32).contiguous(memory_format=torch.channels_last)
        return model(x).float().clamp_(-1, 1)

    with torch.inference_mode():
        h, w = images.shape[-2:]
        if not tile or (h <= tile and w <= tile):
            return run(images).cpu().contiguous()
        overlap = tile_overlap(model)
        tile = max(tile, 2 * overlap)   # smaller tiles would be all overlap
        return tiled_apply(run, images, tile, overlap, scale=model.scale, blend="center",
                           out_device="cpu").contiguous()


def check_size(width: int, height: int, max_pixels: int = MAX_INPUT_PIXELS) -> None:
    if width <= 0 or height <= 0:
        raise NarError(f"image has zero size ({width}x{height})")
    if width * height > max_pixels:
        raise NarError(f"{width}x{height} image is over the upscale memory limit of {max_pixels / 1e6:.1f} MP "
                       f"(its 2x output would be {4 * width * height / 1e6:.0f} MP); crop or resize it first")


def upscale(image, model: SRNet | None = None, tile: int | None = TILE, passes: int = 1, sharpen: float = 0.0):
    """2x super-resolution, ``passes`` times, of a PIL image (returns a PIL image, 8-bit after every
    pass, as saving it between passes would be) or a (3, H, W) / (B, 3, H, W) tensor in [-1, 1]
    (returns a float tensor of the same rank). ``sharpen``: see `upscale_tensor`."""
    from nar.core.images import to_pil, to_tensor
    model = model if model is not None else load_sr()
    if isinstance(image, Image.Image):
        for i in range(passes):
            check_size(*image.size)
            image = to_pil(upscale_tensor(to_tensor(image.convert("RGB"))[None], model, tile,
                                          sharpen=sharpen if i == 0 else 0.0)[0])
        return image
    if not torch.is_tensor(image) or image.ndim not in (3, 4) or image.shape[-3] != 3:
        raise NarError("upscale expects a PIL image or an RGB tensor (3, H, W) / (B, 3, H, W)")
    batch = image[None] if image.ndim == 3 else image
    for i in range(passes):
        check_size(batch.shape[-1], batch.shape[-2])
        batch = upscale_tensor(batch, model, tile, sharpen=sharpen if i == 0 else 0.0)
    return batch[0] if image.ndim == 3 else batch


def open_checked(path: str | Path, max_pixels: int = MAX_INPUT_PIXELS) -> Image.Image:
    """Read an image for upscaling: size checked from the header before decoding."""
    from nar.core.images import load_image
    path = Path(path)
    if not path.is_file():
        raise NarError(f"image not found: {path}")
    try:
        with Image.open(path) as img:
            width, height = img.size
    except Exception as e:   # PIL raises many kinds for non-images
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise NarError(f"cannot read image {path}: {reason}") from None
    check_size(width, height, max_pixels)
    return load_image(path)


def upscale_file(src: str | Path, out: str | Path, ckpt: str | Path | None = None, tile: int | None = TILE,
                 device: str = "cpu", overwrite: bool = False, log=print) -> dict:
    from nar.core.device import pick_device
    from nar.core.images import save_png
    out = Path(out)
    if out.exists() and not overwrite:
        raise NarError(f"{out} exists; pass --overwrite or another --out")
    if out.suffix.lower() != ".png":
        raise NarError(f"--out must be a .png file, got {out}")
    image = open_checked(src)
    model = load_sr(ckpt, pick_device(device))
    t0 = time.perf_counter()
    result = upscale(image, model, tile)
    seconds = time.perf_counter() - t0
    info = {"upscaled": {"from": list(image.size), "to": list(result.size), "scale": model.scale,
                         "sr_ckpt": str(model.source_path), "tile": tile, "source": str(src)}}
    save_png(result, out, {"nar": json.dumps(info)})
    log(f"{image.size[0]}x{image.size[1]} -> {result.size[0]}x{result.size[1]} in {seconds:.2f}s -> {out}")
    return {**info, "seconds": seconds, "file": str(out)}


# ---- sizes above what a prior draws: generate at its native size, then 2x SR ----------------
SR_ABOVE = 1024   # the native size assumed where a prior's checkpoint records none (e.g. untrained weights)


def native_size(meta: dict | None, factor: int) -> int | None:
    """The largest image side a prior draws directly: the scenes it learnt, its checkpoint
    metadata's data grid x the tokenizer ``factor``; None for metadata that records no grid."""
    from nar.priors.base import default_grid
    grid = default_grid(meta or {})
    return max(grid) * int(factor) if grid else None


def prior_native_size(prior, factor: int) -> int:
    """`native_size` of a loaded prior; SR_ABOVE for one whose checkpoint records no grid (e.g.
    untrained weights)."""
    return native_size(getattr(prior, "meta_info", None), factor) or SR_ABOVE


def sample_plan(size: int | None, native: int | None = SR_ABOVE, scale: int = 2) -> tuple[int | None, int]:
    """(size to generate at, number of ``scale``x super-resolution passes). A prior draws at most
    at its native size (the scenes it learnt: data grid x tokenizer factor); a larger size S is
    drawn at S / scale^k, the first such size at or below the native one, then super-resolved k
    times. Native 1024: 2048 -> (1024, 1), 1024 -> (1024, 0); native 512 (the shipped set):
    1024 -> (512, 1), 2048 -> (512, 2)."""
    if size is None or native is None or size <= native:
        return size, 0
    gen, passes = size, 0
    while gen > native:
        if gen % scale:
            raise NarError(f"--size {size} is above the prior's native {native}², so it goes through "
                           f"{scale}x super-resolution from {native}² or below: it must be {native} x a power "
                           f"of {scale} (or a size that halves evenly to one at most {native})")
        gen, passes = gen // scale, passes + 1
    return gen, passes


def fill_passes(side: int, native: int | None) -> int:
    """2x SR passes for an inpainting fill of an image whose longer side is ``side``: it is filled
    at 1/2^k of its size, k the largest with side / 2^k still at least the prior's native size (an
    image under twice the native size is filled at its own size; its kept pixels are the user's)."""
    passes = 0
    while native and side >= native << (passes + 1):
        passes += 1
    return passes


def upscale_output(out, ckpt: str | Path | None = None, device: str | torch.device = "cpu", tile: int | None = TILE,
                   passes: int = 1, sharpen: float = SHARPEN):
    """A `PipelineOutput` of decoded images -> the same with every image super-resolved ``passes``
    times (2x each), the first pass's output sharpened (``sharpen``, `unsharp_mask`); settings
    record the SR model, the sharpening and the generated size, seconds_total includes the SR."""
    model = load_sr(ckpt, device)
    generated = list(out.images[0].size)[::-1]
    t0 = time.perf_counter()
    images = [upscale(im, model, tile, passes, sharpen=sharpen) for im in out.images]
    seconds = time.perf_counter() - t0
    w, h = images[0].size
    out.settings = {**out.settings, "size": w if w == h else None, "image_size": [h, w],
                    "super_resolution": {"scale": model.scale ** passes, "passes": passes, "generated_size": generated,
                                         "sr_ckpt": str(model.source_path), "sharpen": sharpen,
                                         "seconds": round(seconds, 3)}}
    out.images = images
    out.seconds_total += seconds
    return out
