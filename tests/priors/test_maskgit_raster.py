"""MaskGIT's raster layout (``layout = "raster"``): ar's network without its causal mask, started
from a trained ar."""
import pytest
import torch

from nar.core.checkpoint import save_checkpoint
from nar.core.errors import NarError
from nar.priors import load_prior
from nar.priors.ar import ARConfig, ARPrior
from nar.priors.maskgit import MaskGITConfig, MaskGITPrior

V, GRID = 16, (4, 5)
NET = dict(dim=32, depth=2, heads=2, ff_mult=2, dropout=0.0)


def ar_parent(num_classes=2, seed=0, **fields) -> ARPrior:
    torch.manual_seed(seed)
    cfg = ARConfig(**{**NET, "dim_head": 16, "sample_precision": "fp32", **fields})
    prior = ARPrior(cfg, V, num_classes, GRID).eval()
    with torch.no_grad():   # weights far from their small initialisation, so a wrong mapping shows
        for p in prior.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return prior


def raster(num_classes=2, seed=0, **fields) -> MaskGITPrior:
    torch.manual_seed(seed)
    return MaskGITPrior(MaskGITConfig(layout="raster", **{**NET, **fields}), V, num_classes, GRID).eval()


def adopted(parent: ARPrior) -> MaskGITPrior:
    child = raster(parent.num_classes)
    child.adopt_weights(dict(parent.state_dict()), parent.meta())
    return child.eval()


def set_causal(prior: MaskGITPrior, causal: bool) -> None:
    for module in prior.encoder.modules():
        if type(module).__name__ in ("Attention", "Attend"):
            module.causal = causal


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_adopting_an_ar_keeps_its_predictions_under_its_causal_mask():
    """The mapping is exact: with the causal mask put back, the child's logits for cell k are the
    ar's teacher-forced logits for cell k. Without it (as trained and sampled) they see every cell."""
    parent = ar_parent()
    child = adopted(parent)
    tokens = torch.randint(V, (3, *GRID), generator=gen(1))
    cls = torch.tensor([0, 1, 2])   # 2: the null class
    ids = tokens.reshape(3, -1)
    with torch.no_grad():
        want = parent(tokens, cls)
        set_causal(child, True)
        got = child(ids, cls, GRID)
        torch.testing.assert_close(got[..., :V], want, atol=1e-4, rtol=1e-4)
        assert got[..., V].abs().max() == 0                       # the [MASK] output row starts at 0
        set_causal(child, False)
        assert not torch.allclose(child(ids, cls, GRID)[..., :V], want, atol=1e-3)
    mask_row = child.tok_emb.weight[V]
    torch.testing.assert_close(mask_row, parent.tok_emb.weight.mean(0))


def test_the_last_cell_is_never_an_input():
    prior = raster()
    ids = torch.randint(V, (1, GRID[0] * GRID[1]), generator=gen(2))
    other = ids.clone()
    other[0, -1] = (ids[0, -1] + 1) % V
    with torch.no_grad():
        assert torch.equal(prior(ids, torch.tensor([0]), GRID), prior(other, torch.tensor([0]), GRID))
        other[0, 0] = (ids[0, 0] + 1) % V    # any other cell reaches every output
        assert not torch.allclose(prior(ids, torch.tensor([0]), GRID)[0, 0], prior(other, torch.tensor([0]), GRID)[0, 0])


def test_config_and_adoption_errors_are_clear():
    with pytest.raises(NarError, match="layout"):
        MaskGITConfig(layout="columns")
    with pytest.raises(NarError, match="takes no"):
        MaskGITConfig(layout="raster", net={"dim": 32, "heads": 2, "dim_head": 16, "depths": [0, 1, 0], "shorten": [2]})
    prior = raster()
    with pytest.raises(NarError, match="larger than"):
        prior.sample(1, (GRID[0] + 1, GRID[1]))
    with pytest.raises(NarError, match="rotary\\+2d"):
        prior.adopt_weights(dict(ar_parent(pos="rotary").state_dict()), ar_parent(pos="rotary").meta())
    wide = ar_parent(dim=48, dim_head=24, heads=2)
    with pytest.raises(NarError, match="does not fit"):
        prior.adopt_weights(dict(wide.state_dict()), wide.meta())
    grid_prior = MaskGITPrior(MaskGITConfig(**NET), V, 2, GRID)
    with pytest.raises(NarError, match="raster layout"):
        grid_prior.adopt_weights(dict(ar_parent().state_dict()), ar_parent().meta())


def test_overfits_one_grid_per_class_and_samples_it_back(train_steps):
    torch.manual_seed(0)
    prior = raster(num_classes=3, dim=64, heads=4)
    grids = torch.randint(0, V, (3, *GRID), generator=gen(1))
    labels = torch.arange(3).repeat(8)
    first, parts = train_steps(prior, grids[labels], labels, 150)
    assert parts["loss"].item() < first / 2
    out = prior.sample(3, GRID, steps=4, temperature=0.0, cond=torch.arange(3), choice_temperature=0.0)
    assert torch.equal(out.tokens, grids)


def test_inpainting_keeps_known_tokens_and_checkpoints_round_trip(tmp_path):
    prior = adopted(ar_parent())
    known = torch.randint(0, V, (2, *GRID), generator=gen(5))
    keep = torch.rand(2, *GRID, generator=gen(6)) < 0.5
    out = prior.sample(2, GRID, steps=4, known=known, keep=keep, cond=torch.tensor([0, 1]), cfg_scale=2.0,
                       generator=gen(0))
    assert torch.equal(out.tokens[keep], known[keep]) and (out.tokens < V).all()
    path = save_checkpoint(tmp_path / "maskgit.safetensors", prior.state_dict(), prior.meta())
    loaded = load_prior(path, name="maskgit")
    assert loaded.cfg.layout == "raster"
    again = loaded.sample(2, GRID, steps=4, known=known, keep=keep, cond=torch.tensor([0, 1]), cfg_scale=2.0,
                          generator=gen(0))
    assert torch.equal(again.tokens, out.tokens)
