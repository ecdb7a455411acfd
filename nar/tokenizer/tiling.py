"""Tiled encode / decode for images of any size within a memory budget (issue 20).

Decoding splits the (B, d, h, w) code grid into overlapping latent tiles, decodes each on
its own and blends the overlaps linearly in pixel space (as diffusers tiles its VAE, but with
weights that form an exact partition of unity, so no normalisation pass and no seams).
Encoding splits the pixels into overlapping tiles and takes every latent cell from the tile
where it lies furthest from an edge (``blend="center"``), so tokens are computed with context
on every side. Memory is then set by the tile, not the image: an 8192² reconstruction needs
the image buffers plus one tile's activations.

`tiled_apply` is the generic helper (any image-to-image net with a scale factor: decoders,
encoders, super-resolution); `tiled_decode` / `tiled_encode` wrap a VQGAN; `plan` decides
between tiled and untiled from the memory estimate (`estimate_bytes`) and the limit.
This module is model-level: it imports no dataset, pipeline or training code.
"""
from __future__ import annotations

import math
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from nar.core.device import precision_context
from nar.core.errors import NarError
from nar.core.memory import NarMemoryError, memory_guard

# Defaults chosen by measurement (benchmarks/bench_tiling.py, benchmarks/results/tiling_cpu.md):
# latent tiles of up to 72 cells with 4 cells of overlap (1152 px / 64 px at f16): 2048² decodes
# as 2x2 tiles of 66 cells, 6 % more pixels than untiled; the decoder's receptive field beyond
# its latent cell is under 3 cells, and the overlap is blended linearly.
TILE = 72            # decode: largest tile side, in latent cells
OVERLAP = 4          # decode: overlap between neighbouring tiles, in latent cells
ENCODE_OVERLAP = 8   # encode: overlap in latent cells (each cell is taken >= 4 cells from a tile edge)
GiB = 1024 ** 3
DEFAULT_MAX_MEMORY = 8 * GiB       # a third of this 24 GiB shared machine; NAR_MAX_MEMORY / --max-memory
DEFAULT_TILE_ABOVE = 2 * GiB       # untiled work estimated above this is tiled automatically


# ---- the generic helper ----------------------------------------------------------------------
def tile_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) of the fewest tiles of equal size <= ``tile`` that cover [0, length) with
    neighbours overlapping by at least ``overlap``, spread evenly (no thin last tile)."""
    if tile <= 0 or overlap < 0 or 2 * overlap > tile:
        raise NarError(f"tile {tile} with overlap {overlap}: need tile > 0 and 0 <= overlap <= tile / 2")
    if length <= tile:
        return [(0, length)]
    n = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length + (n - 1) * overlap) / n)
    while size - math.ceil((length - size) / (n - 1)) < overlap:   # integer starts keep >= overlap
        size += 1
    starts = [round(i * (length - size) / (n - 1)) for i in range(n)]
    return [(s, s + size) for s in starts]


def _ramps(spans: list[tuple[int, int]], scale: Fraction, blend: str) -> list[torch.Tensor]:
    """1D weights (output units) of each tile: complementary ramps over every overlap, so the
    weights of all tiles sum to exactly 1 at every output position."""
    out = []
    for i, (start, end) in enumerate(spans):
        w = torch.ones(int((end - start) * scale))
        for j, sign in ((i - 1, 1), (i + 1, -1)):
            if not 0 <= j < len(spans):
                continue
            lo, hi = max(start, spans[j][0]), min(end, spans[j][1])
            m = int((hi - lo) * scale)
            if m <= 0:
                continue
            if blend == "linear":
                up = (torch.arange(m) + 0.5) / m               # later tile fades in
            else:                                              # "center": hard cut mid-overlap
                up = (torch.arange(m) >= m // 2).float()
            a = int((lo - start) * scale)
            w[a:a + m] *= up if sign == 1 else 1 - up
        out.append(w)
    return out


def tiled_apply(fn: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, tile: int, overlap: int,
                scale: float | Fraction = 1, blend: str = "linear", out_device: str | torch.device | None = None,
                out_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Apply an image-to-image net ``fn`` ((B, C, h, w) -> (B, C', h*scale, w*scale)) tile by
    tile. ``image`` (B, C, H, W) is cut into overlapping tiles of at most ``tile`` input pixels
    per side (``overlap`` pixels shared by neighbours); each tile goes through ``fn`` on its own
    and the outputs are blended: ``linear`` ramps across each overlap (decoders, super-resolution)
    or ``center`` (each output pixel from the tile it is deepest inside; encoders). ``scale`` may
    be fractional (1/f for an encoder): tiles then start on multiples of its denominator, which
    must divide H and W. The result is allocated on ``out_device`` (default: the input's), so a
    GPU net can fill a CPU image larger than GPU memory. ``fn`` sees slices of ``image`` as they
    are (dtype and device), so a uint8 image can be converted tile by tile."""
    if blend not in ("linear", "center"):
        raise ValueError(f"blend must be 'linear' or 'center', got {blend!r}")
    scale = Fraction(scale).limit_denominator(1024)
    unit = scale.denominator                        # input pixels per whole output pixel
    b, _, height, width = image.shape
    if height % unit or width % unit or tile % unit or overlap % unit:
        raise NarError(f"tiling at scale {scale}: image {width}x{height}, tile {tile} and overlap {overlap} "
                       f"must be multiples of {unit}")
    rows = [(s * unit, e * unit) for s, e in tile_spans(height // unit, tile // unit, overlap // unit)]
    cols = [(s * unit, e * unit) for s, e in tile_spans(width // unit, tile // unit, overlap // unit)]
    wy, wx = _ramps(rows, scale, blend), _ramps(cols, scale, blend)
    out = None
    for (y0, y1), ry in zip(rows, wy):
        for (x0, x1), rx in zip(cols, wx):
            y = fn(image[:, :, y0:y1, x0:x1])
            oy, ox = int(y0 * scale), int(x0 * scale)
            if y.shape[-2:] != (len(ry), len(rx)):
                raise ValueError(f"fn mapped a {x1 - x0}x{y1 - y0} tile to {y.shape[-1]}x{y.shape[-2]}, "
                                 f"expected scale {scale}")
            if out is None:
                out = torch.zeros(b, y.shape[1], int(height * scale), int(width * scale), dtype=out_dtype,
                                  device=out_device if out_device is not None else image.device)
            weight = (ry[:, None] * rx[None, :]).to(device=y.device, dtype=y.dtype)
            out[:, :, oy:oy + len(ry), ox:ox + len(rx)] += (y * weight).to(out.device, out.dtype)
            del y
    return out


# ---- shared GroupNorm statistics ---------------------------------------------------------------
# GroupNorm normalises over the whole image, so a tile normalised on its own comes out in other
# tones than the same pixels decoded whole (4-5 grey levels on average at 1024², with seams).
# The tiled pass therefore normalises every tile with the statistics of the whole image, taken
# from one cheap untiled "proxy" pass at low resolution (PROXY_PIXELS): for the decoder, the
# same latent with the last upsamplings' interpolations skipped; for the encoder, the image
# area-downsampled. With shared statistics a GroupNorm is one affine map per channel, so the
# tiled pass is also cheaper than the untiled one. The parts at latent resolution (attention)
# run untiled up to TRUNK_TOKENS latent cells, so attention stays global there.
PROXY_PIXELS = 512 * 512
TRUNK_TOKENS = 128 * 128
_local = threading.local()


class _Stats:
    """Per-GroupNorm (mean, 1/std) of shape (B, groups); ``record`` fills it, else it is applied."""

    def __init__(self, record: bool, skip_interp: set | None = None):
        self.record, self.skip_interp, self.values = record, skip_interp or set(), {}


@contextmanager
def _using(stats: _Stats | None) -> Iterator[None]:
    previous = getattr(_local, "stats", None)
    _local.stats = stats
    try:
        yield
    finally:
        _local.stats = previous


def _norm_forward(m: nn.GroupNorm, original: Callable) -> Callable:
    def forward(x: torch.Tensor) -> torch.Tensor:
        stats = getattr(_local, "stats", None)
        if stats is None:
            return original(x)
        b, c, h, w = x.shape
        if stats.record:   # the native kernel returns its (B, groups) mean and 1/std with the output
            if x.device.type != "cpu":   # CUDA's kernel takes contiguous NCHW only (proxy pass: small)
                x = x.contiguous()
            out, mean, rstd = torch.ops.aten.native_group_norm(x, m.weight, m.bias, b, c, h * w, m.num_groups, m.eps)
            stats.values[m] = (mean.float(), rstd.float())
            return out
        mean, rstd = stats.values[m]
        per = c // m.num_groups
        scale = rstd.repeat_interleave(per, 1) * m.weight.float()
        shift = m.bias.float() - mean.repeat_interleave(per, 1) * scale
        return torch.addcmul(shift[:, :, None, None].to(x.dtype), x, scale[:, :, None, None].to(x.dtype))
    return forward


def _upsample_forward(m: nn.Module, original: Callable) -> Callable:
    def forward(x: torch.Tensor) -> torch.Tensor:
        stats = getattr(_local, "stats", None)
        return m.conv(x) if stats is not None and m in stats.skip_interp else original(x)
    return forward


def _instrument(module: nn.Module) -> list[nn.Module]:
    """Route the GroupNorms (and upsamplers) of ``module`` through the thread-local statistics
    switch, once; without an active switch they behave exactly as before (thread-safe: other
    threads using the same model are unaffected). Returns the upsamplers in forward order."""
    ups = []
    for m in module.modules():
        if isinstance(m, nn.GroupNorm) and not getattr(m, "_nar_tiling", False):
            m.forward, m._nar_tiling = _norm_forward(m, m.forward), True
        elif type(m).__name__ == "Upsample" and isinstance(getattr(m, "conv", None), nn.Conv2d):
            if not getattr(m, "_nar_tiling", False):
                m.forward, m._nar_tiling = _upsample_forward(m, m.forward), True
            ups.append(m)
    return ups


def _level(level: nn.Module, x: torch.Tensor, resample: bool = True) -> torch.Tensor:
    for i, block in enumerate(level.blocks):
        x = block(x)
        if level.attns is not None:
            x = level.attns[i](x)
    return level.resample(x) if resample and level.resample is not None else x


def _whole_or_tiled(fn: Callable, x: torch.Tensor, tile: int, overlap: int) -> torch.Tensor:
    """Run a latent-resolution part whole when small enough (global attention), else in tiles
    (attention within each tile) normalised with the statistics of the whole grid, taken from
    the part run on every r-th cell (r a power of two: at most TRUNK_TOKENS cells)."""
    height, width = x.shape[-2:]
    if height * width <= TRUNK_TOKENS or not SHARED_TRUNK_STATS:
        return fn(x) if height * width <= TRUNK_TOKENS else tiled_apply(fn, x, tile, overlap)
    r = 2
    while math.ceil(height / r) * math.ceil(width / r) > TRUNK_TOKENS:
        r *= 2
    stats = _Stats(record=True)
    with _using(stats):
        fn(x[..., ::r, ::r])
    stats.record = False
    with _using(stats):
        return tiled_apply(fn, x, tile, overlap)


SHARED_TRUNK_STATS = True


# ---- the VQGAN wrappers ----------------------------------------------------------------------
def tiled_decode(model, tokens: torch.Tensor, tile: int = TILE, overlap: int = OVERLAP,
                 out_device: str | torch.device | None = "cpu", shared_stats: bool = True) -> torch.Tensor:
    """tokens (B, h, w) -> images (B, 3, h*f, w*f) float32 on ``out_device``, decoded in
    latent tiles of at most ``tile`` cells with ``overlap`` cells shared, blended linearly.
    ``shared_stats``: normalise every tile with whole-image GroupNorm statistics (see above);
    False normalises each tile on its own (diffusers' behaviour)."""
    if tokens.ndim != 3:
        raise NarError(f"expected tokens of shape (B, h, w), got {tuple(tokens.shape)}")
    f = model.factor
    with torch.inference_mode():
        codes = model.quantizer.lookup(tokens.to(model.device))
        dec = model.decoder
        if not shared_stats or not all(hasattr(dec, a) for a in ("conv_in", "mid", "up", "norm_out", "conv_out")):
            return tiled_apply(lambda c: model.decode_codes(c).float(), codes, tile, overlap, scale=f,
                               out_device=out_device)
        ups = _instrument(dec)
        first = dec.up[0]

        def trunk(c: torch.Tensor) -> torch.Tensor:    # latent resolution: conv_in, mid, lowest level
            c = c.to(model.post_quant_conv.weight.dtype).contiguous(memory_format=torch.channels_last)
            return _level(first, dec.mid(dec.conv_in(model.post_quant_conv(c))), resample=False)

        def rest(h: torch.Tensor) -> torch.Tensor:      # the upsampling levels
            h = h.contiguous(memory_format=torch.channels_last)   # a tile is a strided slice
            h = first.resample(h) if first.resample is not None else h
            for level in dec.up[1:]:
                h = _level(level, h)
            return dec.conv_out(F.silu(dec.norm_out(h))).float()

        h = _whole_or_tiled(trunk, codes, tile, overlap)
        skip = 0
        while skip < len(ups) and h.shape[-2] * h.shape[-1] * (f / 2 ** skip) ** 2 > PROXY_PIXELS:
            skip += 1
        stats = _Stats(record=True, skip_interp=set(ups[:skip]))
        with _using(stats):
            rest(h)                                     # proxy pass: statistics only
        stats.record, stats.skip_interp = False, set()
        with _using(stats):
            return tiled_apply(rest, h, tile, overlap, scale=f, out_device=out_device)


def tiled_encode(model, images: torch.Tensor, tile: int | None = None, overlap: int | None = None,
                 convert: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 shared_stats: bool = True) -> torch.Tensor:
    """images (B, 3, H, W) (H, W multiples of f) -> tokens (B, h, w): pixel tiles of at most
    ``tile`` pixels (default TILE * f) sharing ``overlap`` pixels (default ENCODE_OVERLAP * f); each
    latent cell comes from the tile it is deepest inside, then snaps to its nearest code.
    ``convert`` maps a tile to [-1, 1] floats (e.g. from uint8), so the whole image never
    exists as floats. ``shared_stats`` as in `tiled_decode` (the proxy is the image
    area-downsampled to about PROXY_PIXELS)."""
    f = model.factor
    tile = TILE * f if tile is None else tile
    overlap = ENCODE_OVERLAP * f if overlap is None else overlap
    convert = convert or (lambda t: t)
    enc = model.encoder
    height, width = images.shape[-2:]
    model.grid(height, width)
    if model.decode_only:
        raise NarError("this tokenizer was loaded decode-only; load it without decode_only to encode")
    with torch.inference_mode():
        if not shared_stats or not all(hasattr(enc, a) for a in ("conv_in", "down", "mid", "norm_out", "conv_out")):
            latent = tiled_apply(lambda t: model.encode_latent(convert(t.to(model.device))).float(), images, tile,
                                 overlap, scale=Fraction(1, f), blend="center", out_device=model.device)
            return model.quantizer.nearest(latent)
        _instrument(enc)

        def head(t: torch.Tensor) -> torch.Tensor:      # full resolution down to the latent grid
            t = t.to(enc.conv_in.weight.dtype).contiguous(memory_format=torch.channels_last)
            h = enc.conv_in(t.contiguous(memory_format=torch.channels_last))
            for level in enc.down[:-1]:
                h = _level(level, h)
            return h

        def tail(h: torch.Tensor) -> torch.Tensor:      # latent resolution: lowest level, mid, out
            h = h.contiguous(memory_format=torch.channels_last)
            h = enc.mid(_level(enc.down[-1], h))
            return model.quant_conv(enc.conv_out(F.silu(enc.norm_out(h)))).float()

        # proxy: the image area-downsampled by r (a power of two) to about PROXY_PIXELS
        r = 1
        while ((height // r) * (width // r) > PROXY_PIXELS and height % (2 * r) == 0 and width % (2 * r) == 0
               and min(height, width) // (2 * r) >= f):
            r *= 2
        ph, pw = max(f, height // r // f * f), max(f, width // r // f * f)
        small = tiled_apply(lambda t: F.avg_pool2d(convert(t.to(model.device)).float(), r), images,
                            max(tile // r * r, r), 0, scale=Fraction(1, r), blend="center", out_device=model.device)
        stats = _Stats(record=True)
        with _using(stats):
            head(small[..., :ph, :pw])
        stats.record = False
        with _using(stats):
            h = tiled_apply(lambda t: head(convert(t.to(model.device))), images, tile, overlap,
                            scale=Fraction(1, f), blend="center", out_device=model.device)
        latent = _whole_or_tiled(tail, h, tile // f, overlap // f)
        return model.quantizer.nearest(latent)


# ---- memory estimate and limit -----------------------------------------------------------------
# Peak bytes of a forward pass ~= PEAK_TENSORS x the largest activation (floats per pixel at its
# resolution, 4 bytes each). Measured on the shipped tokenizer (max RSS growth of untiled decode /
# encode between 1024² and 2048²: 391 and 256 bytes per pixel, i.e. 3.05 and 4.0 activations of
# 32 and 16 floats per pixel; benchmarks/bench_tiling.py), rounded up.
PEAK_TENSORS = {"decode": 3.3, "encode": 4.3}
BASE_BYTES = GiB                  # python + torch + nar + weights: 0.92 GiB measured, rounded up


def floats_per_pixel(cfg, part: str) -> float:
    """Floats per image pixel of the widest activation of the encoder or decoder."""
    widths = [cfg.ch * m for m in cfg.ch_mult]
    best = 0.0
    for i, w in enumerate(widths):
        area = 4.0 ** -i
        # a level's input (the previous level's width) and output live together; the decoder
        # upsamples the coarser level's width to this resolution before its convolutions
        coarser = widths[min(i + 1, len(widths) - 1)]
        best = max(best, (max(w, coarser) if part == "decode" else max(w, widths[max(i - 1, 0)])) * area)
    return best


def estimate_bytes(cfg, height: int, width: int, part: str) -> int:
    """Peak bytes of untiled ``part`` ("encode" or "decode") of one height x width image."""
    return int(PEAK_TENSORS[part] * 4 * floats_per_pixel(cfg, part) * height * width)


def parse_bytes(text: str | int | None) -> int:
    """'8G', '512M', '2.5GiB', or a plain byte count -> bytes."""
    if text is None or isinstance(text, int):
        return int(text) if text is not None else DEFAULT_MAX_MEMORY
    s = str(text).strip().upper().removesuffix("IB").removesuffix("B")
    mult = {"K": 1024, "M": 1024 ** 2, "G": GiB, "T": 1024 ** 4}.get(s[-1:], 1)
    try:
        value = float(s[:-1] if s[-1:] in "KMGT" else s) * mult
    except ValueError:
        raise NarError(f"--max-memory must look like 8G, 512M or a byte count, got {text!r}") from None
    if value <= 0:
        raise NarError(f"--max-memory must be positive, got {text!r}")
    return int(value)


def max_memory(value: str | int | None = None) -> int:
    """The limit: ``value`` if given, else $NAR_MAX_MEMORY, else DEFAULT_MAX_MEMORY."""
    return parse_bytes(value if value is not None else os.environ.get("NAR_MAX_MEMORY"))


def fmt_bytes(n: float) -> str:
    return f"{n / GiB:.1f} GiB" if n >= GiB / 10 else f"{n / 1024 ** 2:.0f} MiB"


@dataclass
class Plan:
    """How one job runs: tiled or not, and the memory it is expected to need."""
    tiled: bool
    bytes: int            # estimated peak of the whole job
    limit: int
    tile: int = TILE
    overlap: int = OVERLAP


def plan(cfg, height: int, width: int, parts: tuple[str, ...] = ("encode", "decode"), tile: bool | None = None,
         limit: str | int | None = None, buffer_bytes_per_pixel: float = 0.0, what: str = "process",
         batch: int = 1, size: tuple[int, int] | None = None) -> Plan:
    """Decide tiled vs untiled for ``parts`` of a height x width image and check the estimate
    against the limit; raises `NarMemoryError` (one line: size, estimate, limit) before any work.
    ``tile``: True forces tiling, False forbids it, None tiles when the untiled estimate is
    above DEFAULT_TILE_ABOVE (or the limit). ``buffer_bytes_per_pixel``: the job's own image
    buffers (input, output, conversions; all images of the batch), which tiling does not
    shrink. ``batch``: images run through the network at once when untiled. ``size``: (W, H)
    to name in the message (e.g. before padding)."""
    limit_bytes = max_memory(limit)
    buffers = int(buffer_bytes_per_pixel * height * width)
    f = cfg.factor
    side = TILE * f
    untiled = max(estimate_bytes(cfg, height, width, p) for p in parts) * batch
    tiled = max(estimate_bytes(cfg, min(height, side), min(width, side), p) for p in parts)
    if tile is None:
        tile = untiled > min(DEFAULT_TILE_ABOVE, limit_bytes - buffers - BASE_BYTES)
    need = BASE_BYTES + buffers + (tiled if tile else untiled)
    if need > limit_bytes:
        hint = "" if tile else "; tiling (--tile) would need less"
        w, h = size or (width, height)
        raise NarMemoryError(f"{w}x{h} image: to {what} needs about {fmt_bytes(need)} "
                             f"(estimated), over the memory limit of {fmt_bytes(limit_bytes)} "
                             f"(--max-memory or NAR_MAX_MEMORY){hint}")
    return Plan(tiled=bool(tile), bytes=need, limit=limit_bytes)


# ---- what pipelines and jobs call ----------------------------------------------------------------
def _size(height: int, width: int, batch: int = 1) -> str:
    return f"{batch} image(s) of {width}x{height}" if batch > 1 else f"a {width}x{height} image"


def decode_images(model, tokens: torch.Tensor, tile: bool | None = None, max_memory: str | int | None = None,
                  batch_size: int = 4, out_device: str | torch.device = "cpu",
                  buffer_bytes_per_pixel: float = 12.0, precision: str = "fp32") -> torch.Tensor:
    """tokens (B, h, w) -> (B, 3, H, W) float32 on ``out_device``: untiled in batches when the
    estimate allows, else one image at a time in tiles; checked against the memory limit
    first (`NarMemoryError` naming the size and the limit), and an out-of-memory error while
    decoding becomes one `NarMemoryError` line. ``buffer_bytes_per_pixel``: what the caller keeps
    per output pixel (default: the float32 result). ``precision``: fp32, bf16, or auto (bf16
    where the hardware has it natively: about 2x faster on such CPUs, within ~2/255 of fp32)."""
    if tokens.ndim != 3:
        raise NarError(f"expected tokens of shape (B, h, w), got {tuple(tokens.shape)}")
    b, h, w = tokens.shape
    f = model.factor
    height, width = h * f, w * f
    p = plan(model.cfg, height, width, parts=("decode",), tile=tile, limit=max_memory, what="decode",
             buffer_bytes_per_pixel=buffer_bytes_per_pixel * b, batch=min(b, batch_size))
    with memory_guard(f"decoding {_size(height, width, b)}" + (" in tiles" if p.tiled else "")):
        with torch.inference_mode(), precision_context(model.device, precision):
            if p.tiled:
                return torch.cat([tiled_decode(model, t[None], p.tile, p.overlap, out_device=out_device).float()
                                  for t in tokens])
            return torch.cat([model.decode_tokens(t.to(model.device)).float().to(out_device)
                              for t in tokens.split(batch_size)])


def encode_images(model, images: torch.Tensor, tile: bool | None = None, max_memory: str | int | None = None,
                  convert: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  buffer_bytes_per_pixel: float = 12.0) -> torch.Tensor:
    """images (B, 3, H, W) (H, W multiples of f; in [-1, 1], or anything ``convert`` maps there)
    -> tokens (B, h, w), untiled or in tiles as the plan says (see `decode_images`)."""
    b, _, height, width = images.shape
    model.grid(height, width)
    p = plan(model.cfg, height, width, parts=("encode",), tile=tile, limit=max_memory, what="encode",
             buffer_bytes_per_pixel=buffer_bytes_per_pixel * b, batch=b)
    convert = convert or (lambda t: t)
    with memory_guard(f"encoding {_size(height, width, b)}" + (" in tiles" if p.tiled else "")):
        with torch.inference_mode():
            if p.tiled:
                return torch.cat([tiled_encode(model, x[None], convert=convert) for x in images])
            return model.encode(convert(images.to(model.device)))
