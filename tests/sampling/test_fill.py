import torch

from nar.sampling.fill import distance_to_kept, kept_ring, nearest_fill, reflect_fill


def test_nearest_fill_continues_the_border_and_keeps_known_tokens():
    tokens = torch.zeros(1, 8, 8, dtype=torch.long)
    tokens[:, :4] = 1          # top half code 1, bottom half code 2
    tokens[:, 4:] = 2
    keep = torch.ones(1, 8, 8, dtype=torch.bool)
    keep[:, 2:6, 2:6] = False  # a hole across the boundary
    noisy = torch.where(keep, tokens, torch.full_like(tokens, 7))
    filled = nearest_fill(noisy, keep, torch.Generator().manual_seed(0))
    assert torch.equal(filled[keep], noisy[keep])
    assert (filled != 7).all()
    # rows next to the top/bottom known rows take those codes
    assert (filled[0, 2, 2:6] == 1).all() and (filled[0, 5, 2:6] == 2).all()


def test_nearest_fill_without_known_tokens_is_a_no_op_and_is_seeded():
    tokens = torch.randint(0, 5, (2, 6, 6))
    none = torch.zeros(2, 6, 6, dtype=torch.bool)
    assert torch.equal(nearest_fill(tokens, none), tokens)
    keep = torch.rand(2, 6, 6, generator=torch.Generator().manual_seed(1)) < 0.3
    a = nearest_fill(tokens, keep, torch.Generator().manual_seed(3))
    b = nearest_fill(tokens, keep, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_kept_ring_is_the_kept_cells_next_to_the_region():
    keep = torch.ones(1, 8, 8, dtype=torch.bool)
    keep[0, 3:5, 3:5] = False
    ring = kept_ring(keep, 1)[0]
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[2:6, 2:6] = True
    expected[3:5, 3:5] = False
    assert torch.equal(ring, expected)
    assert kept_ring(keep, 2)[0].sum() == 36 - 4 and not (kept_ring(keep, 3)[0] & ~keep[0]).any()


def test_distance_to_kept_counts_cells_to_the_nearest_kept_one():
    keep = torch.ones(1, 8, 8, dtype=torch.bool)
    keep[0, 2:7, 1:6] = False   # a 5x5 hole: rings at distance 1, 2, 3
    dist = distance_to_kept(keep)[0]
    assert (dist[keep[0]] == 0).all() and dist[4, 3] == 3 and dist[2, 1] == 1 and dist[3, 2] == 2
    assert (distance_to_kept(torch.zeros(1, 3, 3, dtype=torch.bool)) == 6).all()   # nothing kept


def test_reflect_fill_mirrors_the_kept_tokens_into_each_rows_run():
    tokens = torch.arange(8).repeat(1, 3, 1)
    keep = torch.ones(1, 3, 8, dtype=torch.bool)
    keep[0, 0, 2:6] = False    # a run inside the row: its halves mirror the kept tokens either side
    keep[0, 1, 0:3] = False    # a run at the left edge: mirrored from the right only
    keep[0, 2, 1:] = False     # one kept token: too few to mirror, the rest comes from the row above
    out = reflect_fill(tokens.masked_fill(~keep, 99), keep)
    assert out[0, 0].tolist() == [0, 1, 1, 0, 7, 6, 6, 7]
    assert out[0, 1].tolist() == [5, 4, 3, 3, 4, 5, 6, 7]
    assert out[0, 2, :2].tolist() == [0, 0] and (out[0, 2] != 99).all()
    assert torch.equal(out[keep], tokens[keep])
