"""Spatial orders in which a parallel sampler may fix the cells of a token grid.

MaskGIT fixes, at each step, the tokens its model is most confident about. Confident tokens sit
next to one another (a sky, a flat field), so each step fixes clusters of neighbours drawn
independently of one another, and the strongest dependencies of the grid (between adjacent
tokens) are the ones a parallel draw ignores. Besnier et al. (ICLR 2025, "Halton Scheduler for
Masked Generative Image Transformer") fix the cells in the order of a 2D Halton sequence instead:
a low-discrepancy, quasi-random order, so every step's new tokens are spread evenly over the grid,
as far from one another as the step's count allows, and each is drawn next to tokens already fixed.

``halton_order(h, w)`` is that order for an h×w grid: the cells hit by the Halton points
(radical inverses in bases 2 and 3, scaled to the grid) in the order of their first hit.
"""
from __future__ import annotations

from functools import lru_cache

import torch

__all__ = ["halton_order", "halton_ranks", "radical_inverse"]


def radical_inverse(indices: torch.Tensor, base: int) -> torch.Tensor:
    """The van der Corput radical inverse of each (int64) index in ``base``: its digits mirrored
    about the radix point, in [0, 1). Index 0 maps to 0."""
    out = torch.zeros(indices.shape, dtype=torch.float64)
    scale, rest = 1.0 / base, indices.clone()
    while bool((rest > 0).any()):
        out += (rest % base).double() * scale
        rest, scale = rest // base, scale / base
    return out


@lru_cache(maxsize=32)
def _order(h: int, w: int) -> tuple[int, ...]:
    seen, order, start, chunk = torch.zeros(h * w, dtype=torch.bool), [], 1, 4 * h * w
    # the sequence is equidistributed, so every cell is hit after finitely many points; draw in chunks
    while len(order) < h * w:
        index = torch.arange(start, start + chunk, dtype=torch.long)
        cols = (radical_inverse(index, 2) * w).long().clamp_(max=w - 1)
        rows = (radical_inverse(index, 3) * h).long().clamp_(max=h - 1)
        for cell in (rows * w + cols).tolist():
            if not seen[cell]:
                seen[cell] = True
                order.append(cell)
        start, chunk = start + chunk, 2 * chunk
    return tuple(order)


def halton_order(h: int, w: int) -> torch.Tensor:
    """(h*w,) the flat indices (row * w + col) of an h×w grid's cells, in Halton order."""
    if h < 1 or w < 1:
        raise ValueError(f"a grid needs at least one row and one column, got {h}x{w}")
    return torch.tensor(_order(int(h), int(w)), dtype=torch.long)


def halton_ranks(h: int, w: int, n: int, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, h*w) each cell's place in the Halton order (0 = fixed first), one order per sample: the
    sequence rolled by a random offset per sample (the reference's ``randomize``), so samples do
    not all start from the same cells. The offsets come from ``generator``."""
    order = halton_order(h, w)
    offsets = torch.randint(0, h * w, (n,), generator=generator, device=generator.device if generator else "cpu")
    # sample i fixes order[(k + offset_i) mod N] at place k
    places = (torch.arange(h * w)[None, :] + offsets.cpu()[:, None]) % (h * w)
    cells = order[places]                                     # (n, N) cell fixed at place k
    ranks = torch.empty_like(cells).scatter_(1, cells, torch.arange(h * w).expand(n, -1).contiguous())
    return ranks.to(device)
