"""Learned absolute 2D positions that stretch to any grid size.

A row table and a column table (``train_grid`` entries each) are summed into an (h, w, dim)
embedding. On a grid of another size both tables are linearly interpolated, so the signal is
the *fractional* position: the same layout (sky on top, ground below), stretched. Relative
positions (2D rotary) cannot give this: from an input that is the same everywhere (all
``[MASK]``, or uniform noise in SUNDAE) a purely relative model tells cells apart only by
their distance to the border.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AbsolutePositions2D", "grid_positions", "resize_table"]


def resize_table(table: torch.Tensor, length: int) -> torch.Tensor:
    """(L, d) learned positions -> (length, d), linear interpolation at fractional positions."""
    if table.shape[0] == length:
        return table
    return F.interpolate(table.T[None], size=length, mode="linear", align_corners=True)[0].T


def grid_positions(row_table: torch.Tensor, col_table: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(rows, d) and (cols, d) tables -> (h, w, d): row + column embedding, both stretched."""
    return resize_table(row_table, h)[:, None] + resize_table(col_table, w)[None, :]


class AbsolutePositions2D(nn.Module):
    def __init__(self, train_grid: tuple[int, int], dim: int):
        super().__init__()
        self.row_emb = nn.Parameter(torch.randn(train_grid[0], dim) * 0.02)
        self.col_emb = nn.Parameter(torch.randn(train_grid[1], dim) * 0.02)

    def forward(self, h: int, w: int) -> torch.Tensor:  # -> (h, w, dim)
        return grid_positions(self.row_emb, self.col_emb, h, w)
