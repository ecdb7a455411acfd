import json
import runpy
from pathlib import Path

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from nar.core.errors import NarError
from nar.nn.hourglass import (Hourglass2D, HourglassConfig, HourglassError, PatchMerge,
                              PatchSplit, count_flops)

TINY = dict(dim=32, heads=2, dim_head=16, ff_mult=2)


def model(depths=(1, 2, 1), shorten=(2,), **kw) -> Hourglass2D:
    torch.manual_seed(0)
    return Hourglass2D(**TINY, depths=depths, shorten=shorten, **kw).eval()


@pytest.mark.parametrize("depths,shorten,grid", [
    ((1, 2, 1), (2,), (4, 4)),
    ((1, 2, 1), (2,), (8, 12)),
    ((1, 1, 2, 1, 1), (2, 2), (8, 8)),
    ((1, 1, 2, 1, 1), (2, 2), (4, 12)),
    ((1, 1, 1), (3,), (6, 9)),
    ((3,), (), (5, 7)),  # flat transformer baseline
])
def test_output_shape_equals_input(depths, shorten, grid):
    x = torch.randn(2, *grid, 32)
    assert model(depths, shorten)(x).shape == x.shape


def test_grid_not_divisible_is_a_clear_error():
    net = model((1, 1, 1, 1, 1), (2, 2))
    assert net.total_shortening == 4
    with pytest.raises(ValueError, match="not divisible by the hourglass shortening 4"):
        net(torch.randn(1, 8, 6, 32))
    with pytest.raises(NarError):  # the CLI turns it into one line
        net.check_grid(6, 8)


def test_bad_config():
    with pytest.raises(HourglassError, match="2\\*len\\(shorten\\)\\+1"):
        HourglassConfig(depths=(2, 8), shorten=(2,))
    with pytest.raises(HourglassError, match=">= 2"):
        HourglassConfig(depths=(1, 1, 1), shorten=(1,))
    cfg = HourglassConfig(depths=[2, 2, 4, 2, 2], shorten=[2, 2])  # as read from TOML
    assert cfg.depths == (2, 2, 4, 2, 2) and cfg.total_shortening == 4


@pytest.mark.parametrize("s,grid", [(2, (4, 6)), (3, (6, 9))])
def test_downsample_merges_true_2d_patches(s, grid):
    torch.manual_seed(0)
    merge = PatchMerge(8, s)
    h, w = grid
    x = torch.randn(1, h, w, 8)
    base = merge(x)
    assert base.shape == (1, h // s, w // s, 8)
    differs_from_1d_grouping = False
    for row in range(h):
        for col in range(w):
            y = x.clone()
            y[0, row, col] += 1.0
            changed = (merge(y) - base).abs().amax(-1)[0] > 1e-6
            assert changed.nonzero().tolist() == [[row // s, col // s]]
            # where grouping runs of s² flattened tokens would have put it
            flat_group = (row * w + col) // (s * s)
            differs_from_1d_grouping |= divmod(flat_group, w // s) != (row // s, col // s)
    assert differs_from_1d_grouping  # the grid is one where the two groupings disagree


def test_upsample_fills_its_own_patch():
    torch.manual_seed(0)
    split = PatchSplit(8, 2)
    x = torch.randn(1, 2, 3, 8)
    base = split(x)
    y = x.clone()
    y[0, 1, 2] += 1.0
    changed = (split(y) - base).abs().amax(-1)[0] > 1e-6
    assert sorted(map(tuple, changed.nonzero().tolist())) == [(2, 4), (2, 5), (3, 4), (3, 5)]


def test_merge_then_split_is_patchwise():
    torch.manual_seed(0)
    merge, split = PatchMerge(8, 2), PatchSplit(8, 2)
    x = torch.randn(1, 4, 6, 8)
    y = x.clone()
    y[0, 3, 0] += 1.0
    changed = (split(merge(y)) - split(merge(x))).abs().amax(-1)[0] > 1e-6
    assert changed[2:4, 0:2].all() and changed.sum() == 4


def test_no_causal_masking():
    net = model((1, 1, 1, 1, 1), (2, 2))
    x = torch.randn(1, 8, 8, 32)
    y = x.clone()
    y[0, -1, -1] += torch.randn(32)  # not a constant shift: the first LayerNorm would erase it
    assert (net(x)[0, 0, 0] - net(y)[0, 0, 0]).abs().max() > 1e-4


def test_each_level_uses_its_own_integer_grid():
    net = model((1, 1, 1, 1, 1), (2, 2))
    net(torch.randn(1, 8, 12, 32))
    grids = sorted({key[:2] for key in net.rotary._cache})
    assert grids == [(2, 3), (4, 6), (8, 12)]


def test_positions_matter_in_the_hourglass():
    # same tokens laid out as 8×4 and 4×8 give different outputs: rotary is on
    net = model()
    x = torch.randn(1, 32, 32)
    tall = net(x.reshape(1, 8, 4, 32)).reshape(1, 32, 32)
    wide = net(x.reshape(1, 4, 8, 32)).reshape(1, 32, 32)
    assert (tall - wide).abs().max() > 1e-4


def test_larger_grid_than_seen_before():
    net = model((1, 1, 1, 1, 1), (2, 2))
    net(torch.randn(1, 8, 8, 32))
    x = torch.randn(1, 16, 24, 32)
    out = net(x)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_backward_reaches_every_parameter():
    net = model((1, 1, 1, 1, 1), (2, 2), dropout=0.1).train()
    net(torch.randn(2, 8, 8, 32)).pow(2).mean().backward()
    trainable = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for _, p in trainable)


@pytest.mark.parametrize("depths,shorten,grid", [
    ((2, 3, 2), (2,), (8, 12)),
    ((1, 1, 2, 1, 1), (2, 2), (8, 8)),
    ((3,), (), (4, 6)),
])
def test_flop_count_matches_flop_counter(depths, shorten, grid):
    net = model(depths, shorten)
    # the math backend decomposes attention into bmm, which FlopCounterMode counts
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        net(torch.randn(1, *grid, 32))
    measured = counter.get_total_flops()
    predicted = count_flops(net.config, *grid)
    assert predicted == net.flops(*grid)
    assert abs(predicted - measured) / measured < 0.05


def test_hourglass_costs_less_than_flat():
    cfg = HourglassConfig(dim=256, depths=(2, 8, 2), shorten=(2,))
    flat = HourglassConfig(dim=256, depths=(12,), shorten=())
    assert count_flops(cfg, 32, 32) < 0.5 * count_flops(flat, 32, 32)


def test_benchmark_script_runs(tmp_path):
    bench = runpy.run_path(str(Path(__file__).parents[2] / "benchmarks" / "bench_hourglass.py"))
    bench["main"](["--grids", "4", "--dim", "32", "--heads", "2", "--dim-head", "16",
                   "--depths", "1,1,1", "--warmup", "0", "--repeats", "1", "--out", str(tmp_path)])
    rows = json.loads((tmp_path / "hourglass_cpu.json").read_text())["rows"]
    assert [r["model"] for r in rows] == ["hourglass", "flat"]
    assert (tmp_path / "hourglass_cpu.md").exists()


def test_local_blocks_start_as_identity_and_let_neighbours_in():
    """A 4x4 merge straight into the valley: a token sees the rest of its patch only through
    the valley's one vector (here, with an empty valley, not at all beyond its patch); a local
    block lets the next patch's token in directly. Its zero initialisation leaves a trained
    network's function unchanged."""
    import torch
    from nar.nn.hourglass import Hourglass2D, HourglassConfig
    torch.manual_seed(0)
    base = HourglassConfig(dim=32, heads=2, dim_head=16, depths=(0, 0, 0), shorten=(4,))
    plain = Hourglass2D(base)
    local = Hourglass2D(HourglassConfig(**{**base.__dict__, "local_blocks": (1, 1)}))
    missing, unexpected = local.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith(("local_before.", "local_after.")) for k in missing)
    x = torch.randn(1, 8, 8, 32, requires_grad=True)
    assert torch.allclose(local(x), plain(x), atol=1e-6)

    def reaches_across_patches(net):
        for block in list(getattr(net, "local_before", [])) + list(getattr(net, "local_after", [])):
            torch.nn.init.normal_(block.mlp[-1].weight, std=0.1)
        x.grad = None
        net(x)[0, 3, 3].sum().backward()      # last token of the top-left 4x4 patch
        return bool(x.grad[0, 3, 4].abs().sum() > 0)   # its right neighbour, in the next patch
    assert not reaches_across_patches(plain)
    assert reaches_across_patches(local)


def test_local_blocks_config_is_checked_and_counted():
    import pytest
    from nar.nn.hourglass import HourglassConfig, HourglassError, count_flops
    with pytest.raises(HourglassError):
        HourglassConfig(local_blocks=(1,))
    with pytest.raises(HourglassError):
        HourglassConfig(local_kernel=4)
    a = HourglassConfig(dim=32, heads=2, dim_head=16, depths=(0, 1, 0), shorten=(4,))
    b = HourglassConfig(dim=32, heads=2, dim_head=16, depths=(0, 1, 0), shorten=(4,), local_blocks=(0, 2))
    assert count_flops(b, 8, 8) - count_flops(a, 8, 8) == 2 * 64 * (2 * 32 * 9 + 4 * 32 * 32)


def test_refined_patch_weights_read_a_patch_as_its_upsampled_coarse_patch():
    """4x4 -> 2x2 merge: the new merge of a 2x2 patch equals the old merge of that patch upsampled
    (nearest) to 4x4, and the new split of a token is the old split averaged over each 2x2 cell."""
    from einops import rearrange, repeat
    from nar.nn.hourglass import refine_patch_weights
    torch.manual_seed(0)
    d = 3
    old_merge, old_split = PatchMerge(d, 4), PatchSplit(d, 4)
    merge_w, split_w, split_b = refine_patch_weights(old_merge.proj.weight, old_split.proj.weight,
                                                     old_split.proj.bias, 4, 2)
    new_merge, new_split = PatchMerge(d, 2), PatchSplit(d, 2)
    with torch.no_grad():
        new_merge.proj.weight.copy_(merge_w)
        new_merge.proj.bias.copy_(old_merge.proj.bias)
        new_split.proj.weight.copy_(split_w)
        new_split.proj.bias.copy_(split_b)
    x = torch.randn(2, 2, 2, d)                                  # one 2x2 patch per sample
    up = repeat(x, "b h w d -> b (h a) (w c) d", a=2, c=2)       # the same patch at 4x4
    torch.testing.assert_close(new_merge(x), old_merge(up))
    v = torch.randn(2, 1, 1, d)
    coarse = rearrange(old_split(v), "b (h a) (w c) d -> b h w (a c) d", a=2, c=2).mean(-2)
    torch.testing.assert_close(new_split(v), coarse)
    with pytest.raises(HourglassError):
        refine_patch_weights(old_merge.proj.weight, old_split.proj.weight, old_split.proj.bias, 4, 3)
