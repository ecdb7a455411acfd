"""`nar train --init-from`: fine-tuning a trained prior, with blocks the new config adds."""
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from nar.core.errors import NarError
from nar.pipelines.train_prior import train_prior

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
QUICK = {"train.steps": 1, "train.batch_size": 2, "train.snapshot_every": 0, "train.warmup_steps": 1,
         "train.device": "cpu", "train.lr": 1e-12}


def test_init_from_loads_weights_and_keeps_new_blocks_fresh(tiny_models, tmp_path):
    parent = tiny_models["priors"]["sundae"]
    run = train_prior("sundae", tiny_models["tokens"], CONFIGS / "priors" / "sundae_tiny.toml",
                      {**QUICK, "model.net.local_blocks": [0, 1]}, out=tmp_path / "ft",
                      progress=False, init_from=parent)
    before, after = load_file(parent), load_file(run / "model.safetensors")
    new = [k for k in after if k not in before]
    assert new and all(k.startswith("net.local_after.") for k in new)
    for key in before:   # an lr of 1e-12: one step leaves the inherited weights where they were
        assert torch.allclose(before[key].float(), after[key].float(), atol=1e-6), key


def test_init_from_refuses_another_prior_or_shape(tiny_models, tmp_path):
    with pytest.raises(NarError, match="maskgit"):
        train_prior("sundae", tiny_models["tokens"], CONFIGS / "priors" / "sundae_tiny.toml", QUICK,
                    out=tmp_path / "a", progress=False, init_from=tiny_models["priors"]["maskgit"])
    with pytest.raises(NarError, match="does not fit"):
        train_prior("sundae", tiny_models["tokens"], CONFIGS / "priors" / "sundae_tiny.toml",
                    {**QUICK, "model.net.dim": 48}, out=tmp_path / "b", progress=False,
                    init_from=tiny_models["priors"]["sundae"])


def test_stop_after_checkpoints_mid_schedule_and_resumes_to_the_same_end(tiny_models, tmp_path):
    cfg = {**QUICK, "train.steps": 4, "train.lr": 1e-3, "train.ckpt_every": 100}
    run = train_prior("sundae", tiny_models["tokens"], CONFIGS / "priors" / "sundae_tiny.toml", cfg,
                      out=tmp_path / "stop", progress=False, stop_after=2)
    from nar.core.checkpoint import read_meta
    assert read_meta(run / "model.safetensors")["step"] == 2   # stopped and checkpointed at 2 of 4
    train_prior("sundae", tiny_models["tokens"], CONFIGS / "priors" / "sundae_tiny.toml", cfg,
                out=tmp_path / "stop", progress=False)
    whole = train_prior("sundae", tiny_models["tokens"], CONFIGS / "priors" / "sundae_tiny.toml", cfg,
                        out=tmp_path / "whole", progress=False)
    assert read_meta(run / "model.safetensors")["step"] == 4
    a, b = load_file(run / "model.safetensors"), load_file(whole / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)          # stop + resume == one uninterrupted run


def test_init_from_a_prior_of_a_smaller_codebook_keeps_the_network_and_renews_token_tables(tiny_models, tmp_path):
    """A new tokenizer with more codes: the parent's network carries over, its per-code tables
    (embedding, head) start fresh with the new size."""
    import numpy as np
    from nar.data.tokens import TokenCache, write_token_cache
    old = TokenCache.open(tiny_models["tokens"])
    size = 2 * old.codebook_size
    tokens = np.random.default_rng(0).integers(0, size, (16, *old.grid))
    cache = write_token_cache(tmp_path / "big_codes", tokens, np.asarray(old.labels[:16]),
                              {**{k: v for k, v in old.header.items() if k not in ("n", "grid", "dtype", "format", "version")},
                               "codebook_size": size, "tokenizer_hash": "another", "tokenizer_path": None})
    parent = tiny_models["priors"]["sundae"]
    run = train_prior("sundae", cache, CONFIGS / "priors" / "sundae_tiny.toml", QUICK, out=tmp_path / "grown",
                      progress=False, init_from=parent)
    before, after = load_file(parent), load_file(run / "model.safetensors")
    assert after["tok_emb.weight"].shape[0] == size and after["head.weight"].shape[0] == size
    body = [k for k in before if k.startswith("net.")]
    assert body and all(torch.allclose(before[k].float(), after[k].float(), atol=1e-6) for k in body)   # lr 1e-12


def test_init_from_a_prior_of_another_grid_stretches_its_position_tables(tiny_models, tmp_path):
    """A child trained on a smaller token grid (e.g. 512² images after a 1024² parent) starts from
    its parent's learned 2D positions stretched to its own length, as sampling stretches them."""
    import numpy as np
    from nar.data.tokens import TokenCache, write_token_cache
    from nar.nn.positions import resize_table
    with_positions = {**QUICK, "model.abs_positions": True}
    parent = train_prior("sundae", tiny_models["tokens"], CONFIGS / "priors" / "sundae_tiny.toml",
                         {**with_positions, "train.lr": 1e-3}, out=tmp_path / "parent", progress=False)
    old = TokenCache.open(tiny_models["tokens"])
    h, w = old.grid
    tokens = np.asarray(old.tokens[:16])[:, : h // 2, : w // 2]
    small = write_token_cache(tmp_path / "half_grid", tokens, np.asarray(old.labels[:16]),
                              {k: v for k, v in old.header.items() if k not in ("n", "grid", "dtype", "format", "version")})
    child = train_prior("sundae", small, CONFIGS / "priors" / "sundae_tiny.toml", with_positions,
                        out=tmp_path / "child", progress=False, init_from=parent / "model.safetensors")
    before, after = load_file(parent / "model.safetensors"), load_file(child / "model.safetensors")
    for key, length in (("positions.row_emb", h // 2), ("positions.col_emb", w // 2)):
        assert before[key].shape[0] == h if key.endswith("row_emb") else w
        assert after[key].shape[0] == length
        assert torch.allclose(after[key].float(), resize_table(before[key].float(), length), atol=1e-5)
    body = [k for k in before if k.startswith("net.")]
    assert body and all(torch.allclose(before[k].float(), after[k].float(), atol=1e-6) for k in body)


@pytest.mark.parametrize("child", ["sundae", "maskgit"])
def test_init_from_a_parent_with_a_larger_outer_patch_refines_its_merge(tiny_models, tmp_path, child):
    """A parent merging 4x4 patches, a child merging 2x2 (its valley on a 4x finer grid): the valley
    carries over as it was, the merge and split are the parent's refined to 2x2 (also through
    maskgit's adoption of a sundae)."""
    from nar.nn.hourglass import refine_patch_weights
    parent = train_prior("sundae", tiny_models["tokens"], CONFIGS / "priors" / "sundae_tiny.toml",
                         {**QUICK, "model.net.shorten": [4], "model.abs_positions": True}, out=tmp_path / "parent",
                         progress=False)
    net = {"dim": 64, "heads": 2, "dim_head": 32, "depths": [1, 2, 1], "shorten": [2], "ff_mult": 2}
    overrides = {**QUICK, **({"model.net.shorten": [2], "model.abs_positions": True} if child == "sundae" else
                             {"model.net": net})}
    run = train_prior(child, tiny_models["tokens"], CONFIGS / "priors" / f"{child}_tiny.toml", overrides,
                      out=tmp_path / "child", progress=False, init_from=parent / "model.safetensors")
    before, after = load_file(parent / "model.safetensors"), load_file(run / "model.safetensors")
    keys = ("net.root.merge.proj.weight", "net.root.split.proj.weight", "net.root.split.proj.bias")
    expected = refine_patch_weights(*(before[k].float() for k in keys), 4, 2)
    for key, value in zip(keys, expected):
        assert after[key].shape == value.shape and torch.allclose(after[key].float(), value, atol=1e-5), key
    valley = [k for k in before if k.startswith("net.root.valley.")]
    assert valley and all(torch.allclose(before[k].float(), after[k].float(), atol=1e-6) for k in valley)


@pytest.mark.parametrize("child", ["sundae", "maskgit"])
def test_init_from_a_shallower_parent_starts_its_new_blocks_as_the_identity(tiny_models, tmp_path, child):
    """Full-resolution blocks added around a parent's valley (also through maskgit's adoption of a
    sundae) start as the identity: the child's first logits are its parent's."""
    from nar.priors import load_prior
    parent = train_prior("sundae", tiny_models["tokens"], CONFIGS / "priors" / "sundae_tiny.toml",
                         {**QUICK, "model.abs_positions": True}, out=tmp_path / "parent", progress=False)
    parent = parent / "model.safetensors"
    net = {"dim": 64, "heads": 2, "dim_head": 32, "depths": [2, 2, 2], "shorten": [2], "ff_mult": 2}
    overrides = {**QUICK, **({"model.net.depths": [2, 2, 2], "model.abs_positions": True} if child == "sundae"
                             else {"model.net": net})}
    run = train_prior(child, tiny_models["tokens"], CONFIGS / "priors" / f"{child}_tiny.toml", overrides,
                      out=tmp_path / "child", progress=False, init_from=parent)
    after = load_file(run / "model.safetensors")
    for key in ("net.root.pre.blocks.1.attn.to_out.weight", "net.root.post.blocks.1.ff.net.3.bias"):
        assert after[key].abs().max() < 1e-6, key     # new: zeroed (an lr of 1e-12 keeps them there)
    assert after["net.root.pre.blocks.1.attn.to_qkv.weight"].abs().max() > 0   # the rest initialised as usual
    old, new = load_prior(parent), load_prior(run / "model.safetensors")
    torch.manual_seed(0)
    ids = torch.randint(old.codebook_size, (2, 8, 8))
    classes = torch.zeros(2, dtype=torch.long)
    with torch.no_grad():
        want = old(ids, classes).reshape(2, 64, -1)
        got = (new(ids.reshape(2, 64), classes, (8, 8))[..., : old.codebook_size] if child == "maskgit"
               else new(ids, classes).reshape(2, 64, -1))
    torch.testing.assert_close(got.float(), want.float(), atol=2e-3, rtol=1e-3)


def test_a_raster_maskgit_starts_from_a_trained_ar(tiny_models, tmp_path):
    """`nar train --prior maskgit --init-from ar.safetensors` with ``layout = "raster"``: the ar's layers,
    tables and head carry over under maskgit's names, plus a [MASK] row."""
    parent = tiny_models["priors"]["ar"]
    run = train_prior("maskgit", tiny_models["tokens"], CONFIGS / "priors" / "maskgit_tiny.toml",
                      {**QUICK, "model.layout": "raster", "model.heads": 2}, out=tmp_path / "raster",
                      progress=False, init_from=parent)
    before, after = load_file(parent), load_file(run / "model.safetensors")
    layers = [k for k in before if k.startswith("layers.")]
    assert layers and all(torch.allclose(before[k].float(), after["encoder." + k[7:]].float(), atol=1e-6)
                          for k in layers)
    size = before["tok_emb.weight"].shape[0]
    assert torch.allclose(after["tok_emb.weight"][:size].float(), before["tok_emb.weight"].float(), atol=1e-6)
    assert after["tok_emb.weight"].shape[0] == size + 1
    with pytest.raises(NarError, match="raster layout"):
        train_prior("maskgit", tiny_models["tokens"], CONFIGS / "priors" / "maskgit_tiny.toml",
                    {**QUICK, "model.heads": 2}, out=tmp_path / "grid", progress=False, init_from=parent)
