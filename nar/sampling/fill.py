"""Token-grid fills used to start inpainting from something better than noise, and the geometry of
an inpainting region on the grid (how far a cell is from the kept tokens, the kept ring around it)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["distance_to_kept", "kept_ring", "nearest_fill", "reflect_fill", "shift_grid"]


def nearest_fill(tokens: torch.Tensor, keep: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, h, w) tokens, (B, h, w) bool keep -> tokens where every unknown position takes the
    token of a nearby known one (grown ring by ring from the known region; ties between
    neighbours broken at random), so the region starts as a continuation of its border.
    A sample with no known position comes back unchanged."""
    out, known = tokens.clone(), keep.clone()
    offsets = ((-1, 0), (1, 0), (0, -1), (0, 1))
    while True:
        frontier = ~known & _any_neighbour(known)
        if not bool(frontier.any()):
            return out
        # a random known neighbour per frontier cell: draw a score per direction, take the best
        scores = torch.rand((len(offsets), *tokens.shape), generator=generator, device=tokens.device)
        best_score = torch.full(tokens.shape, -1.0, device=tokens.device)
        value = out.clone()
        for k, (dy, dx) in enumerate(offsets):
            n_known, n_value = shift_grid(known, dy, dx, False), shift_grid(out, dy, dx, 0)
            better = frontier & n_known & (scores[k] > best_score)
            value = torch.where(better, n_value, value)
            best_score = torch.where(better, scores[k], best_score)
        out = torch.where(frontier, value, out)
        known = known | frontier


def shift_grid(x: torch.Tensor, dy: int, dx: int, fill) -> torch.Tensor:
    """x[..., i, j] -> x[..., i + dy, j + dx] (the neighbour's value), ``fill`` off the grid;
    any leading dims (batch, channels)."""
    out = torch.full_like(x, fill)
    h, w = x.shape[-2:]
    ys, yd = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
    xs, xd = (slice(dx, w), slice(0, w - dx)) if dx >= 0 else (slice(0, w + dx), slice(-dx, w))
    out[..., yd, xd] = x[..., ys, xs]
    return out


def _any_neighbour(known: torch.Tensor) -> torch.Tensor:
    return (shift_grid(known, -1, 0, False) | shift_grid(known, 1, 0, False)
            | shift_grid(known, 0, -1, False) | shift_grid(known, 0, 1, False))


def distance_to_kept(keep: torch.Tensor) -> torch.Tensor:
    """(n, h, w) bool keep mask -> (n, h, w) float: each cell's Chebyshev distance in cells to the
    nearest kept cell (0 on kept cells; h + w in an image with nothing kept)."""
    h, w = keep.shape[-2:]
    dist = torch.where(keep, 0.0, float(h + w))
    reached = keep
    for d in range(1, max(h, w)):
        grown = F.max_pool2d(reached[:, None].float(), 3, stride=1, padding=1)[:, 0] > 0
        dist = torch.where(grown & ~reached, float(d), dist)
        if bool(grown.all()) or torch.equal(grown, reached):
            break
        reached = grown
    return dist


def kept_ring(keep: torch.Tensor, width: int) -> torch.Tensor:
    """(n, h, w) bool keep mask -> the kept cells within ``width`` cells (Chebyshev distance) of a
    regenerated one: the surroundings a fill has to agree with."""
    near = F.max_pool2d((~keep)[:, None].float(), 2 * width + 1, stride=1, padding=width)[:, 0] > 0
    return near & keep


def reflect_fill(tokens: torch.Tensor, keep: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, h, w) tokens, (B, h, w) bool keep -> tokens where every unknown cell takes the kept token
    mirrored across the nearer end of its masked run in its row, so horizontal structure (a horizon,
    a ridge, a skyline) runs on into the region as reflection padding does. Cells whose mirror is
    not kept (a run wider than the kept tokens beside it, a row with nothing kept) take
    `nearest_fill`'s token (ties drawn from ``generator``). Known tokens come back unchanged."""
    out, filled = tokens.clone(), keep.clone()
    w = tokens.shape[-1]
    for b, r in zip(*torch.nonzero((~keep).any(dim=-1), as_tuple=True)):
        row_keep = keep[b, r].tolist()
        c = 0
        while c < w:
            if row_keep[c]:
                c += 1
                continue
            start = c
            while c < w and not row_keep[c]:
                c += 1
            end = c   # the masked run is [start, end)
            for x in range(start, end):
                from_left = start > 0 and (end == w or x < (start + end) / 2)
                src = 2 * start - 1 - x if from_left else 2 * end - 1 - x
                if 0 <= src < w and row_keep[src]:
                    out[b, r, x], filled[b, r, x] = tokens[b, r, src], True
    return nearest_fill(out, filled, generator) if not bool(filled.all()) else out
