"""Rotary position embeddings for token grids (2D axial).

Wraps ``rotary-embedding-torch`` and are applied to q / k *after* the head split,
shape ``(B, heads, N, dim_head)``, so every head sees positions (the reference SUNDAE
code rotated before the split, which left all but one head position-blind).

Positions are integers on the grid the attention runs on (``freqs_for="lang"``): token
(r, c) sits at (r, c), and at a coarser hourglass level the merged token sits at
(r // s, c // s) of that level's own grid. Integer positions make attention depend on
relative offsets only, so a model trained on 16×16 sees the same local geometry on
64×64. ``freqs_for="pixel"`` (positions squeezed into [-1, 1]) would instead stretch
the geometry whenever the grid size changes.
"""
from __future__ import annotations

import torch
from einops import rearrange
from rotary_embedding_torch import RotaryEmbedding, apply_rotary_emb
from torch import Tensor, nn

__all__ = ["AxialRotary2D", "apply_rotary", "rotary_tables"]


def apply_rotary(t: Tensor, freqs: Tensor | tuple[Tensor, Tensor]) -> Tensor:
    """Rotate q or k of shape (..., N, dim_head) by ``freqs`` of shape (N, dim_head), or by
    the precomputed ``(cos, signed sin)`` pair of ``tables`` (same result, no trigonometry
    and no concatenation per call: ``t·cos + swap_pairs(t)·sin±``)."""
    if isinstance(freqs, tuple):
        cos, sin = freqs
        tf = t.float()  # fp32 math as in apply_rotary_emb (a no-op on fp32 inputs)
        return torch.addcmul(tf * cos, tf.unflatten(-1, (-1, 2)).flip(-1).flatten(-2), sin).to(t.dtype)
    return apply_rotary_emb(freqs, t)


def rotary_tables(freqs: Tensor) -> tuple[Tensor, Tensor]:
    """Angles (N, d) of interleaved rotation pairs -> (cos, sin±) with sin± = -sin at even
    features, +sin at odd ones, for ``apply_rotary``."""
    sin = freqs.sin()
    sign = torch.ones(freqs.shape[-1], device=freqs.device, dtype=freqs.dtype)
    sign[0::2] = -1.0
    return freqs.cos(), sin * sign


class _RotaryBase(nn.Module):
    def __init__(self, rotary: RotaryEmbedding):
        super().__init__()
        self.rotary = rotary
        self._cache: dict[tuple, Tensor] = {}

    def _cached(self, key: tuple, make) -> Tensor:
        # the frequencies are fixed (not learned), so the angles are a pure function of the
        # grid: compute each grid once per device
        if key not in self._cache:
            with torch.no_grad():
                self._cache[key] = make()
        return self._cache[key]

    def _apply(self, fn, *args, **kwargs):
        self._cache.clear()  # .to() / .half(): drop tensors cached on the old device
        exact = self.rotary.freqs.data
        module = super()._apply(fn, *args, **kwargs)
        # keep frequencies in fp32 whatever the model dtype: angles are position × frequency,
        # and in bf16 a position of 60 is already off by a quarter radian
        self.rotary.freqs.data = exact.to(self.rotary.freqs.device)
        return module

    @staticmethod
    def rotate(t: Tensor, freqs: Tensor) -> Tensor:
        """Apply to q or k of shape (B, heads, N, dim_head) (or any (..., N, dim_head))."""
        return apply_rotary(t, freqs)


class AxialRotary2D(_RotaryBase):
    """2D axial rotary embedding: half of each head's features rotate with the row index,
    the other half with the column index.

    Args:
        dim_head: per-head feature size; must be divisible by 4 (two axes × rotation pairs).
        theta: frequency base for integer ("lang") positions.
        freqs_for: "lang" (integer positions, extrapolates to larger grids; default) or
            "pixel" (positions in [-1, 1] regardless of grid size).
        max_freq: highest frequency for "pixel" positions.
    """

    def __init__(self, dim_head: int, theta: float = 10_000.0, freqs_for: str = "lang",
                 max_freq: float = 10.0):
        if dim_head % 4 != 0:
            raise ValueError(f"2D rotary needs dim_head divisible by 4, got {dim_head}")
        # each axis gets dim_head // 2 features; the library's own cache is keyed by length
        # only (it would ignore offsets), so it is switched off and we cache by grid instead
        super().__init__(RotaryEmbedding(dim=dim_head // 2, freqs_for=freqs_for, theta=theta,
                                         max_freq=max_freq, cache_if_possible=False))
        self.dim_head = dim_head

    def freqs(self, h: int, w: int, device: torch.device | str | None = None,
              offset: tuple[int, int] = (0, 0)) -> Tensor:
        """Rotation angles for an h×w grid in raster order: (h*w, dim_head), float32.

        ``offset`` shifts the grid origin (row, col); useful for crops of a larger canvas.
        """
        device = torch.device(device) if device is not None else self.rotary.device
        key = (h, w, device, tuple(offset))

        def make():
            axial = self.rotary.get_axial_freqs(h, w, offsets=tuple(offset))  # (h, w, dim_head)
            return rearrange(axial, "h w d -> (h w) d").to(device)

        return self._cached(key, make)

    def tables(self, h: int, w: int, device: torch.device | str | None = None,
               offset: tuple[int, int] = (0, 0)) -> tuple[Tensor, Tensor]:
        """``(cos, sin±)`` of ``freqs(h, w, ...)``, computed once per grid: what the
        hourglass hands its attention layers."""
        device = torch.device(device) if device is not None else self.rotary.device
        return self._cached((h, w, device, tuple(offset), "tables"),
                            lambda: rotary_tables(self.freqs(h, w, device, offset)))
