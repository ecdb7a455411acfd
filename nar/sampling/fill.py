"""Token-grid fills used to start inpainting from something better than noise."""
from __future__ import annotations

import torch

__all__ = ["nearest_fill", "shift_grid"]


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
