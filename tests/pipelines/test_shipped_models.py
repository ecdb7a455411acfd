"""The models shipped in nar/assets/models load and sample (what `make sample` relies on)."""
import pytest
import torch

from nar.pipelines.models import default_prior_path, default_tokenizer_path, installed_models
from nar import Pipeline
from nar.priors import prior_names


def test_every_prior_and_the_tokenizer_are_shipped():
    kinds = {(m["kind"], m["name"]) for m in installed_models()}
    assert ("tokenizer", "vqgan") in kinds
    assert {name for kind, name in kinds if kind == "prior"} == set(prior_names())
    total_mb = sum(m["size_mb"] for m in installed_models())
    assert total_mb < 60


@pytest.mark.parametrize("name", prior_names())
def test_shipped_model_samples_a_small_grid(name):
    pipe = Pipeline.load(device="cpu")
    prior = pipe.prior(name)
    assert pipe.prior_path(name) == default_prior_path(name) and pipe.tokenizer_path == default_tokenizer_path()
    assert pipe.tokenizer.decode_only  # sampling never loads the encoder
    out = pipe.sample(prior=name, n=1, grid=(4, 4), steps=2, seed=0, class_name=pipe.class_names(name)[0])
    assert out.tokens.shape == (1, 4, 4)
    assert ((out.tokens >= 0) & (out.tokens < prior.codebook_size)).all()
    images = pipe.decode_tensor(out.tokens)
    assert images.shape == (1, 3, 4 * pipe.factor, 4 * pipe.factor) and torch.isfinite(images).all()
    assert out.images[0].size == (4 * pipe.factor, 4 * pipe.factor)


def test_shipped_models_describe_their_training():
    for m in installed_models():
        meta = m["meta"]
        assert meta["params"] > 0 and meta["weights_dtype"] == "float16"
        training = meta["training"]
        assert training["steps"] == m["step"] > 0 and training["wall_hours"] > 0 and training["hardware"]
        if m["kind"] == "prior":
            assert meta["tokenizer_path"] is None and meta["tokenizer_factor"] == 16
            assert "token grids" in training["data"] or "fresh procedural" in training["data"]


def test_all_three_priors_share_the_1024_grid_and_the_tokens():
    """Issue 13 item 4: ar, maskgit and sundae sample the same 64x64 grid of the same tokens; the
    shipped tokenizer's decoder was fine-tuned alone, so it makes the tokens the priors learnt."""
    from nar.priors.base import default_grid
    from nar.tokenizer.load import tokenizer_hash
    metas = {m["name"]: m["meta"] for m in installed_models() if m["kind"] == "prior"}
    assert {name: default_grid(meta) for name, meta in metas.items()} == {name: (64, 64) for name in metas}
    tokens = tokenizer_hash(default_tokenizer_path())
    assert all(meta["tokenizer_hash"] == tokens for meta in metas.values())
    assert tuple(metas["ar"]["train_grid"]) == (16, 64)     # trained on whole-row windows, sampled sliding


def test_nar_models_lists_every_file():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "nar.cli", "models"], capture_output=True, text=True,
                         env={"COLUMNS": "250", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
                         cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert out.returncode == 0, out.stderr
    for m in installed_models():
        assert m["file"] in out.stdout
    assert "1024² native (64x64 tokens)" in out.stdout  # the default sundae draws megapixel images


def test_shipped_sundae_moves_its_patch_grid_and_starts_from_maskgit():
    """The default (v4): sundae's objective for 200 steps on fresh renders, started from the shipped
    maskgit v2 (the same hourglass); the patch grid moves every sampling step (no fixed 64-px patch
    borders), and its record keeps the chain of parents, maskgit v2 (200 steps) and v1 (2400)."""
    prior = Pipeline.load(device="cpu").prior("sundae")
    assert prior.cfg.shift_patches and prior.cfg.abs_positions and prior.cfg.box_corruption == 0.25
    assert len({prior.patch_shift(t) for t in range(16)}) == 16
    meta = next(m["meta"] for m in installed_models() if (m["kind"], m["name"]) == ("prior", "sundae"))
    assert meta["training"]["steps"] == 200
    assert meta["training"]["data"].startswith("fresh procedural 1024² renders")
    parent = meta["training"]["fine_tuned_from"]
    assert (parent["prior"], parent["step"]) == ("maskgit", 200)
    assert parent["training"]["fine_tuned_from"]["step"] == 2400


def test_shipped_maskgit_is_the_fresh_render_fine_tune():
    """The default maskgit (v2): the 1024² maskgit (step 2400 on cached grids) fine-tuned 200 steps on
    fresh renders with box corruption (the inpainting setting); its record keeps the parent's run."""
    prior = Pipeline.load(device="cpu").prior("maskgit")
    assert prior.cfg.shift_patches and prior.cfg.box_corruption == 0.25
    meta = next(m["meta"] for m in installed_models() if (m["kind"], m["name"]) == ("prior", "maskgit"))
    assert meta["training"]["steps"] == 200
    assert meta["training"]["data"].startswith("fresh procedural 1024² renders")
    parent = meta["training"]["fine_tuned_from"]
    assert parent["prior"] == "maskgit" and parent["step"] == 2400
