"""MaskGIT on SUNDAE's 2D hourglass (``[model.net]``): the 1024² grid at CPU cost, a moving patch
grid, and a start from a trained sundae of the same network."""
import pytest
import torch

from nar.core.checkpoint import save_checkpoint
from nar.core.errors import NarError
from nar.nn.hourglass import HourglassConfig, patch_offset
from nar.priors import load_prior
from nar.priors.maskgit import MaskGITConfig, MaskGITPrior
from nar.priors.sundae import SundaeConfig, SundaePrior

V = 16
NET = dict(dim=32, heads=2, dim_head=16, depths=(1, 1, 1), shorten=(2,), ff_mult=2)


def hourglass_maskgit(num_classes=0, shift=True, seed=0, **fields) -> MaskGITPrior:
    torch.manual_seed(seed)
    cfg = MaskGITConfig(net=HourglassConfig(**NET), shift_patches=shift, **fields)
    return MaskGITPrior(cfg, V, num_classes, (4, 4)).eval()


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_config_checks_and_checkpoint_round_trip(tmp_path):
    with pytest.raises(NarError, match="shift_patches needs the hourglass"):
        MaskGITConfig(shift_patches=True)
    p = hourglass_maskgit(num_classes=2)
    assert p.grid_multiple == 2 and hasattr(p, "net") and not hasattr(p, "encoder")
    with pytest.raises(NarError, match="not divisible by the hourglass shortening 2"):
        p.sample(1, (4, 5), generator=gen())
    path = save_checkpoint(tmp_path / "m.safetensors", p.state_dict(), p.meta())  # config as a plain dict
    loaded = load_prior(path, name="maskgit")
    assert isinstance(loaded.cfg.net, HourglassConfig) and loaded.cfg.shift_patches
    ids, cls = torch.randint(V + 1, (2, 16)), torch.tensor([0, 1])
    with torch.no_grad():
        assert torch.equal(p(ids, cls, (4, 4), shift=(1, 0)), loaded(ids, cls, (4, 4), shift=(1, 0)))
    # FLOPs: the hourglass's, plus the head on the positions asked for
    assert p.forward_flops((4, 4), head_positions=0) < p.forward_flops((4, 4))


def test_sampling_moves_the_patch_grid_and_inpainting_keeps_tokens(monkeypatch):
    p = hourglass_maskgit()
    shifts = []
    forward = MaskGITPrior.forward

    def spy(self, ids, class_ids, grid, select=None, shift=(0, 0)):
        shifts.append(shift)
        return forward(self, ids, class_ids, grid, select=select, shift=shift)

    monkeypatch.setattr(MaskGITPrior, "forward", spy)
    known = torch.randint(V, (2, 4, 4), generator=gen(3))
    keep = torch.zeros(2, 4, 4, dtype=torch.bool)
    keep[:, :2] = True
    out = p.sample(2, (4, 4), steps=4, known=known, keep=keep, generator=gen(1))
    assert shifts == [patch_offset(2, t) for t in range(4)] and len(set(shifts)) == 4
    assert torch.equal(out.tokens[keep], known[keep]) and int(out.tokens.max()) < V


def test_tiny_hourglass_maskgit_learns_one_grid_per_class():
    p = hourglass_maskgit(num_classes=3, label_smoothing=0.0).train()
    grids = torch.randint(V, (3, 4, 4), generator=gen(1))
    labels = torch.arange(3).repeat(8)
    opt = torch.optim.AdamW(p.parameters(), lr=3e-3, weight_decay=0.0)
    losses = []
    for _ in range(150):
        parts = p.loss(grids[labels], labels)   # a random patch-grid offset per batch
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        losses.append(parts["loss"].item())
    assert sum(losses[-10:]) / 10 < 0.2 * losses[0], (losses[0], losses[-10:])
    p.eval()
    out = p.sample(3, (4, 4), steps=4, temperature=0.0, cond=torch.arange(3), choice_temperature=0.0)
    assert (out.tokens == grids).float().mean() > 0.9


def test_starts_from_a_sundae_of_the_same_network(tmp_path):
    torch.manual_seed(1)
    sundae = SundaePrior(SundaeConfig(net=HourglassConfig(**NET), abs_positions=True, shift_patches=True),
                         V, 3, (4, 4)).eval()
    path = save_checkpoint(tmp_path / "sundae.safetensors", sundae.state_dict(), sundae.meta())
    from nar.pipelines.train_prior import _init_weights
    p = hourglass_maskgit(num_classes=3, seed=5)
    _init_weights(p, "maskgit", path)
    # with no [MASK] in the input both compute the same function of the grid
    ids = torch.randint(V, (2, 4, 4), generator=gen(2))
    cls = torch.tensor([0, 2])
    with torch.no_grad():
        a = sundae(ids, cls, shift=(1, 1))
        b = p(ids.flatten(1), cls, (4, 4), shift=(1, 1))[..., :V].reshape(2, 4, 4, V)
    assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(p.tok_emb.weight[V], sundae.tok_emb.weight.mean(0))  # [MASK] = mean token
    with pytest.raises(NarError, match="does not fit this maskgit config"):
        _init_weights(hourglass_maskgit(num_classes=0), "maskgit", path)   # other classes
    with pytest.raises(NarError, match="only from a sundae checkpoint"):
        MaskGITPrior(MaskGITConfig(dim=32, depth=1, heads=2), V, 3, (4, 4)).adopt_weights({}, {"name": "sundae"})


def test_a_sundae_starts_from_a_maskgit_of_the_same_network(tmp_path):
    """The reverse adoption (`nar train --prior sundae --init-from maskgit.safetensors`): on a grid
    without [MASK] both compute the same logits over the real codes."""
    p = hourglass_maskgit(num_classes=3, seed=7)
    path = save_checkpoint(tmp_path / "maskgit.safetensors", p.state_dict(), p.meta())
    from nar.pipelines.train_prior import _init_weights
    torch.manual_seed(3)
    sundae = SundaePrior(SundaeConfig(net=HourglassConfig(**NET), abs_positions=True, shift_patches=True),
                         V, 3, (4, 4)).eval()
    _init_weights(sundae, "sundae", path)
    ids = torch.randint(V, (2, 4, 4), generator=gen(4))
    cls = torch.tensor([1, 3])      # 3: the null class of both
    with torch.no_grad():
        a = sundae(ids, cls, shift=(1, 0))
        b = p(ids.flatten(1), cls, (4, 4), shift=(1, 0))[..., :V].reshape(2, 4, 4, V)
    assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(NarError, match="does not fit this sundae config"):
        _init_weights(SundaePrior(SundaeConfig(net=HourglassConfig(**NET), abs_positions=True, shift_patches=True),
                                  V, 2, (4, 4)), "sundae", path)   # other classes
    with pytest.raises(NarError, match="only from a maskgit checkpoint"):
        sundae.adopt_weights({}, {"name": "ar"})
