import pytest
import torch

from nar.core.errors import NarError
from nar.sr.tokens import TokenSRConfig, TokenUpsampler


def tiny(**kw) -> TokenUpsampler:
    torch.manual_seed(0)
    return TokenUpsampler(TokenSRConfig(codebook_size=16, dim=16, coarse_blocks=1, fine_blocks=1, groups=4, **kw))


def test_logits_cover_the_fine_grid_and_the_net_runs_on_any_grid():
    m = tiny()
    for h, w in ((3, 5), (8, 8)):
        logits = m(torch.randint(16, (2, h, w)), torch.full((2, 2 * h, 2 * w), m.mask_id))
        assert logits.shape == (2, 16, 2 * h, 2 * w)


def test_a_fine_grid_of_the_wrong_size_is_refused():
    m = tiny()
    with pytest.raises(NarError, match="2x fine grid"):
        m(torch.randint(16, (1, 4, 4)), torch.randint(16, (1, 4, 4)))


def test_bad_configs_are_refused():
    with pytest.raises(NarError):
        TokenSRConfig(dim=10, groups=4).validate()
    with pytest.raises(NarError):
        TokenSRConfig(scale=1).validate()


def test_loss_falls_when_fine_tokens_follow_the_coarse_ones():
    # each coarse token t has the fixed 2x2 children (t, t+1, t+2, t+3) mod K: learnable from the coarse grid alone
    gen = torch.Generator().manual_seed(0)
    coarse = torch.randint(16, (8, 4, 4), generator=gen)
    children = torch.stack([coarse, coarse + 1, coarse + 2, coarse + 3], -1) % 16          # (B, h, w, 4)
    fine = children.view(8, 4, 4, 2, 2).permute(0, 1, 3, 2, 4).reshape(8, 8, 8)
    m = tiny()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = m.loss(coarse, fine, generator=gen)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    m.eval()
    drawn = m.sample(coarse, steps=3, temperature=0.0, generator=torch.Generator().manual_seed(1))
    assert (drawn == fine).float().mean() > 0.9


def test_sample_fills_every_cell_with_a_code_and_is_seeded():
    m = tiny().eval()
    coarse = torch.randint(16, (2, 4, 6))
    a = m.sample(coarse, steps=4, generator=torch.Generator().manual_seed(3))
    b = m.sample(coarse, steps=4, generator=torch.Generator().manual_seed(3))
    assert a.shape == (2, 8, 12)
    assert a.min() >= 0 and a.max() < 16      # no mask id left
    assert torch.equal(a, b)
    with pytest.raises(NarError, match="steps"):
        m.sample(coarse, steps=0)
