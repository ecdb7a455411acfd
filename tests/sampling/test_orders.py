import pytest
import torch

from nar.sampling.orders import halton_order, halton_ranks, radical_inverse


def test_radical_inverse_mirrors_the_digits():
    index = torch.arange(8)
    assert radical_inverse(index, 2).tolist() == [0, 0.5, 0.25, 0.75, 0.125, 0.625, 0.375, 0.875]
    assert radical_inverse(torch.arange(4), 3).tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1 / 9])


@pytest.mark.parametrize("grid", [(1, 1), (4, 4), (5, 7), (32, 32), (16, 48)])
def test_halton_order_is_a_permutation_of_the_cells(grid):
    order = halton_order(*grid)
    assert sorted(order.tolist()) == list(range(grid[0] * grid[1]))


def test_halton_order_spreads_every_prefix_over_the_grid():
    h = w = 16
    order = halton_order(h, w)
    rows, cols = order // w, order % w
    for k in (16, 64):   # the first k cells: about k/16 in every quarter of the grid, no clump
        quarter = (rows[:k] // 8) * 2 + cols[:k] // 8
        counts = torch.bincount(quarter, minlength=4)
        assert counts.min() >= k // 4 - 2 and counts.max() <= k // 4 + 2
    # the first 64 cells (a quarter of the grid): far fewer side-by-side pairs among them than a
    # random quarter has (2 · 64 · 1/4 = 32 expected); a raster or confidence order has more still
    taken = torch.zeros(h * w, dtype=torch.bool)
    taken[order[:64]] = True
    taken = taken.reshape(h, w)
    touching = int((taken[:, 1:] & taken[:, :-1]).sum() + (taken[1:] & taken[:-1]).sum())
    assert touching <= 16


def test_halton_ranks_are_one_rolled_order_per_sample():
    ranks = halton_ranks(6, 6, 3, torch.Generator().manual_seed(0))
    order = halton_order(6, 6)
    assert ranks.shape == (3, 36)
    for row in ranks:
        assert sorted(row.tolist()) == list(range(36))
        cells = row.argsort()             # the cells in the order this sample fixes them
        offset = int((order == cells[0]).nonzero())
        assert torch.equal(cells, order.roll(-offset))
    again = halton_ranks(6, 6, 3, torch.Generator().manual_seed(0))
    assert torch.equal(ranks, again)
