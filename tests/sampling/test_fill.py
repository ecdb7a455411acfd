import torch

from nar.sampling.fill import nearest_fill


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
