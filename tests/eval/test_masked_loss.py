"""The held-out masked-token loss: the same cells for every checkpoint, the training loss's value."""
import math

import pytest
import torch
import torch.nn.functional as F

from nar.core.errors import NarError
from nar.eval.masked_loss import masked_cells, masked_token_loss
from nar.priors.maskgit import MaskGITConfig, MaskGITPrior

V, GRID = 16, (4, 4)
HOURGLASS = {"dim": 32, "heads": 2, "dim_head": 16, "depths": [0, 1, 0], "shorten": [2]}


def prior(seed=0, **fields) -> MaskGITPrior:
    torch.manual_seed(seed)
    return MaskGITPrior(MaskGITConfig(**fields), V, 2, GRID).eval()


def grids(n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (n, *GRID), generator=g), torch.randint(0, 2, (n,), generator=g)


def test_masked_cells_are_a_fixed_share_drawn_from_the_seed_alone():
    cells = masked_cells(3, 40, 0.15, seed=1)
    assert cells.shape == (3, 40) and cells.sum(dim=1).tolist() == [math.ceil(0.15 * 40)] * 3
    assert torch.equal(cells, masked_cells(3, 40, 0.15, seed=1))
    assert not torch.equal(cells, masked_cells(3, 40, 0.15, seed=2))
    assert masked_cells(2, 40, 1.0).all()
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(NarError, match="mask ratio"):
            masked_cells(2, 40, bad)


@pytest.mark.parametrize("fields", [{"net": HOURGLASS}, {"net": HOURGLASS, "shift_patches": True},
                                    {"layout": "raster", "dim": 32, "depth": 1, "heads": 2}],
                         ids=["hourglass", "shifted-hourglass", "raster"])
def test_the_loss_is_maskgits_cross_entropy_on_the_masked_cells(fields):
    model = prior(**fields)
    tokens, labels = grids()
    ids = tokens.reshape(len(tokens), -1)
    loss = masked_token_loss(model, tokens, labels, ratios=(0.5,), batch_size=2)[0.5]
    masked = masked_cells(len(tokens), ids.shape[1], 0.5)
    shifts = ((0, 0), (1, 1)) if model.cfg.shift_patches else ((0, 0),)
    expected = sum(F.cross_entropy(model(ids.masked_fill(masked, model.mask_id), labels, GRID, select=masked,
                                         shift=s)[:, :V], ids[masked]).item() for s in shifts) / len(shifts)
    assert loss == pytest.approx(expected, rel=1e-5)
    assert masked_token_loss(model, tokens, labels, ratios=(0.5,))[0.5] == pytest.approx(loss, rel=1e-6)


def test_a_prior_that_learnt_the_grids_scores_lower_than_an_untrained_one(train_steps):
    tokens, labels = grids(n=4)
    untrained, trained = prior(net=HOURGLASS), prior(net=HOURGLASS)
    train_steps(trained, tokens, labels, steps=60)
    before = masked_token_loss(untrained, tokens, labels)
    after = masked_token_loss(trained, tokens, labels)
    assert set(before) == {0.15, 0.5, 0.85}
    assert all(after[r] < before[r] - 0.5 for r in before)
    assert before[0.5] == pytest.approx(math.log(V), abs=0.3)   # a fresh head is close to uniform
