"""2D-aware hourglass transformer (the SUNDAE network, megapixel-SUNDAE §3.2).

    (B, h, w, D) ─ pre layers ─┬─ merge s×s patches ─ valley (nestable) ─ split to s×s ─┐
                               └──────────────────── residual ─────────────────────────(+)─ post layers ─ (B, h, w, D)

Resampling works on true 2D patches of the token grid (never on runs of the flattened
sequence, which would shorten one axis s² times and the other not at all). Attention is
non-causal everywhere; 2D rotary positions are applied per head on each level's own grid.

Config convention (as in hourglass-transformers): ``depths=(2, 8, 2), shorten=(2,)`` is
2 pre layers, ×2 per axis downsample, 8 valley layers, upsample, 2 post layers;
``depths=(2, 2, 4, 2, 2), shorten=(2, 2)`` nests a second hourglass in the valley;
``depths=(12,), shorten=()`` is a flat 12-layer transformer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn

from nar.core.errors import NarError
from nar.nn.attention import TransformerStack
from nar.nn.flops import block_flops
from nar.nn.local_mixing import LocalMixer, local_mixer_flops
from nar.nn.rotary import AxialRotary2D

__all__ = ["HourglassConfig", "HourglassError", "Hourglass2D", "PatchMerge", "PatchSplit",
           "count_flops", "patch_offset", "refine_patch_weights", "run_shifted"]


class HourglassError(NarError, ValueError):
    """An hourglass config that cannot be built, or a grid it cannot take."""


@dataclass
class HourglassConfig:
    dim: int = 256                        # token feature size, the same at every level
    heads: int = 8                        # attention heads per layer
    dim_head: int = 32                    # features per head (divisible by 4 for 2D rotary)
    depths: tuple[int, ...] = (2, 8, 2)   # layers: pre..., valley, ...post (len 2k+1)
    shorten: tuple[int, ...] = (2,)       # per-axis shortening at each of the k levels
    ff_mult: int = 4                      # feed-forward hidden size = ff_mult * dim
    dropout: float = 0.0                  # attention, feed-forward and residual dropout
    rotary_theta: float = 10_000.0        # rotary frequency base (integer grid positions)
    local_blocks: tuple[int, int] = (0, 0)  # full-resolution local mixing blocks (before, after) the outer level
    local_kernel: int = 3                 # their depthwise kernel: each token sees its k×k neighbours

    def __post_init__(self):
        self.depths, self.shorten = tuple(self.depths), tuple(self.shorten)  # TOML gives lists
        self.local_blocks = tuple(self.local_blocks)
        if len(self.local_blocks) != 2 or any(n < 0 for n in self.local_blocks):
            raise HourglassError(f"local_blocks must be two counts >= 0 (before, after), got {self.local_blocks}")
        if self.local_kernel < 1 or self.local_kernel % 2 != 1:
            raise HourglassError(f"local_kernel must be odd and >= 1, got {self.local_kernel}")
        if len(self.depths) != 2 * len(self.shorten) + 1:
            raise HourglassError(
                f"hourglass depths {self.depths} need 2*len(shorten)+1 = "
                f"{2 * len(self.shorten) + 1} entries for shorten={self.shorten} "
                "(pre layers per level, the valley, then post layers per level)")
        if any(d < 0 for d in self.depths):
            raise HourglassError(f"hourglass depths must be >= 0, got {self.depths}")
        if any(s < 2 for s in self.shorten):
            raise HourglassError(f"hourglass shorten factors must be >= 2, got {self.shorten}")
        if self.dim_head % 4 != 0:
            raise HourglassError(f"dim_head must be divisible by 4 for 2D rotary, got {self.dim_head}")

    @property
    def total_shortening(self) -> int:
        """Per-axis factor between the input grid and the innermost valley grid."""
        total = 1
        for s in self.shorten:
            total *= s
        return total

    def check_grid(self, h: int, w: int) -> None:
        t = self.total_shortening
        if h % t or w % t:
            raise HourglassError(
                f"token grid {h}x{w} is not divisible by the hourglass shortening {t} "
                f"(shorten={self.shorten}); use a grid whose sides are multiples of {t}")

    def level_grids(self, h: int, w: int) -> list[tuple[int, int]]:
        """Grid size at each level, outermost first (len(shorten) + 1 entries)."""
        self.check_grid(h, w)
        grids = [(h, w)]
        for s in self.shorten:
            h, w = h // s, w // s
            grids.append((h, w))
        return grids


class PatchMerge(nn.Module):
    """Downsample: every s×s patch of the grid becomes one token (Linear over s²·dim)."""

    def __init__(self, dim: int, s: int):
        super().__init__()
        self.s = s
        self.proj = nn.Linear(s * s * dim, dim)

    def forward(self, x: Tensor) -> Tensor:  # (B, h, w, D) -> (B, h/s, w/s, D)
        return self.proj(rearrange(x, "b (h s1) (w s2) d -> b h w (s1 s2 d)", s1=self.s, s2=self.s))


class PatchSplit(nn.Module):
    """Upsample: every token becomes the s×s patch it was merged from (Linear to s²·dim)."""

    def __init__(self, dim: int, s: int):
        super().__init__()
        self.s = s
        self.proj = nn.Linear(dim, s * s * dim)

    def forward(self, x: Tensor) -> Tensor:  # (B, h, w, D) -> (B, h*s, w*s, D)
        return rearrange(self.proj(x), "b h w (s1 s2 d) -> b (h s1) (w s2) d", s1=self.s, s2=self.s)


def refine_patch_weights(merge_w: Tensor, split_w: Tensor, split_b: Tensor, old: int, new: int
                         ) -> tuple[Tensor, Tensor, Tensor]:
    """An outer merge / split of old×old patches carried over to new×new ones (``new`` dividing
    ``old``), for a network that keeps its valley and halves (or quarters) the patch: the new merge
    reads a new×new patch as the old one read it upsampled (nearest) to old×old, and each token of
    the new split gets the mean of the old split's outputs over the cells it was upsampled to.
    Shapes: merge (D, old²·D) -> (D, new²·D), split (old²·D, D) -> (new²·D, D), bias likewise."""
    if old % new:
        raise HourglassError(f"a {old}x{old} patch merge can only be refined to a divisor of {old}, not {new}")
    axes = dict(i=new, a=old // new, j=new, b=old // new)   # old patch row = i·k + a: new row i upsampled k times
    merge = rearrange(merge_w, "o (i a j b d) -> o (i j d) a b", **axes).sum((-2, -1))
    split = rearrange(split_w, "(i a j b d) e -> (i j d) e a b", **axes).mean((-2, -1))
    bias = rearrange(split_b, "(i a j b d) -> (i j d) a b", **axes).mean((-2, -1))
    return merge, split, bias


def _stack(cfg: HourglassConfig, depth: int) -> TransformerStack:
    return TransformerStack(cfg.dim, depth, cfg.heads, cfg.dim_head, cfg.ff_mult, cfg.dropout)


def _on_grid(stack: TransformerStack, x: Tensor, freqs) -> Tensor:
    """Run a sequence stack over a (B, h, w, D) grid in raster order."""
    h = x.shape[1]
    x = stack(rearrange(x, "b h w d -> b (h w) d"), rotary_freqs=freqs)
    return rearrange(x, "b (h w) d -> b h w d", h=h)


class HourglassLevel(nn.Module):
    """One level: pre stack, then (if shortened) merge -> inner level -> split + residual -> post."""

    def __init__(self, cfg: HourglassConfig, depths: tuple[int, ...], shorten: tuple[int, ...]):
        super().__init__()
        self.pre = _stack(cfg, depths[0])
        self.valley = None
        if shorten:
            s = shorten[0]
            self.merge = PatchMerge(cfg.dim, s)
            self.valley = HourglassLevel(cfg, depths[1:-1], shorten[1:])
            self.split = PatchSplit(cfg.dim, s)
            self.post = _stack(cfg, depths[-1])

    def forward(self, x: Tensor, rotary: AxialRotary2D) -> Tensor:
        freqs = rotary.tables(x.shape[1], x.shape[2], x.device)  # this level's own grid: (cos, sin±)
        x = _on_grid(self.pre, x, freqs)
        if self.valley is None:
            return x
        residual = x
        x = self.split(self.valley(self.merge(x), rotary)) + residual
        return _on_grid(self.post, x, freqs)


class Hourglass2D(nn.Module):
    """(B, h, w, dim) -> (B, h, w, dim), for any h, w divisible by ``total_shortening``.

    Build with ``Hourglass2D(cfg)`` or ``Hourglass2D(dim=..., depths=..., shorten=...)``
    (fields of ``HourglassConfig``).
    The output has been through a final LayerNorm, ready for a logits head.
    """

    def __init__(self, config: HourglassConfig | None = None, **fields):
        super().__init__()
        if config is not None and fields:
            raise TypeError("pass either a HourglassConfig or keyword fields, not both")
        self.config = cfg = config if config is not None else HourglassConfig(**fields)
        self.rotary = AxialRotary2D(cfg.dim_head, theta=cfg.rotary_theta)  # shared by all levels
        before, after = cfg.local_blocks
        self.local_before = nn.ModuleList(LocalMixer(cfg.dim, cfg.local_kernel) for _ in range(before))
        self.root = HourglassLevel(cfg, cfg.depths, cfg.shorten)
        self.local_after = nn.ModuleList(LocalMixer(cfg.dim, cfg.local_kernel) for _ in range(after))

    @property
    def total_shortening(self) -> int:
        return self.config.total_shortening

    def check_grid(self, h: int, w: int) -> None:
        self.config.check_grid(h, w)

    def flops(self, h: int, w: int) -> int:
        return count_flops(self.config, h, w)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[-1] != self.config.dim:
            raise ValueError(f"expected (B, h, w, {self.config.dim}), got {tuple(x.shape)}")
        self.check_grid(x.shape[1], x.shape[2])
        for block in self.local_before:
            x = block(x)
        x = self.root(x, self.rotary)
        for block in self.local_after:
            x = block(x)
        return x


def count_flops(cfg: HourglassConfig, h: int, w: int) -> int:
    """Analytic forward FLOPs for one sample on an h×w grid.

    Counts matmuls only (2·m·n·k each): q/k/v and output projections, QKᵀ and AV,
    feed-forward, patch merge and split. Norms, softmax, GELU, rotary and residual adds are
    left out (a few % at these sizes), as ``torch.utils.flop_counter`` also does.
    """
    d = cfg.dim
    per_token, per_pair = block_flops(d, cfg.heads * cfg.dim_head, cfg.ff_mult * cfg.dim)

    def block(n: int) -> int:
        return n * per_token + n * n * per_pair

    grids = cfg.level_grids(h, w)
    total = 0
    for level, (gh, gw) in enumerate(grids):
        n = gh * gw
        if level < len(cfg.shorten):  # pre + post stacks, merge + split (each 2·(n/s²)·(s²d)·d)
            total += (cfg.depths[level] + cfg.depths[-1 - level]) * block(n) + 2 * 2 * n * d * d
        else:  # innermost valley
            total += cfg.depths[level] * block(n)
    total += sum(cfg.local_blocks) * local_mixer_flops(d, cfg.local_kernel, 1, h * w)
    return total


def patch_offset(s: int, step: int | None = None) -> tuple[int, int]:
    """An offset (dy, dx) in [0, s)² for an s×s patch grid: random (default generator) when
    ``step`` is None (training), else step t's from a fixed cycle that visits all s² offsets
    before repeating, jumping far between consecutive steps (sampling; the same for every seed)."""
    if s == 1:
        return 0, 0
    if step is None:
        dy, dx = torch.randint(s, (2,)).tolist()
        return dy, dx
    stride = next(k for k in range(s * s // 2 + 1, s * s) if math.gcd(k, s * s) == 1)  # coprime: a full cycle
    index = (step * stride) % (s * s)
    return index // s, index % s


def run_shifted(net: nn.Module, x: Tensor, shift: tuple[int, int]) -> Tensor:
    """``net`` on the (B, h, w, D) grid ``x`` rolled by ``shift`` = (dy, dx), the output rolled
    back: the hourglass's patch borders move while every token keeps its own features (add
    absolute positions before, so a patch that wraps around the edge knows where its tokens are)."""
    dy, dx = shift
    if not (dy or dx):
        return net(x)
    return torch.roll(net(torch.roll(x, (dy, dx), dims=(1, 2))), (-dy, -dx), dims=(1, 2))
