import torch

from nar.nn.positions import AbsolutePositions2D, resize_table


def test_training_grid_is_the_tables_themselves():
    pos = AbsolutePositions2D((3, 5), 8)
    out = pos(3, 5)
    assert out.shape == (3, 5, 8)
    assert torch.allclose(out[1, 2], pos.row_emb[1] + pos.col_emb[2])


def test_other_grids_stretch_the_layout():
    table = torch.arange(4.0)[:, None].repeat(1, 2)  # rows 0, 1, 2, 3
    resized = resize_table(table, 7)
    assert resized.shape == (7, 2)
    # ends stay put, midpoints interpolate: fractional position, not integer index
    assert torch.allclose(resized[:, 0], torch.tensor([0, 0.5, 1, 1.5, 2, 2.5, 3]))
    pos = AbsolutePositions2D((4, 4), 6)
    big = pos(8, 16)
    assert big.shape == (8, 16, 6)
    assert torch.allclose(big[0, 0], pos(4, 4)[0, 0]) and torch.allclose(big[-1, -1], pos(4, 4)[-1, -1])
