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


def test_all_three_priors_share_one_grid_and_the_tokens():
    """Issue 13 item 4: ar, maskgit and sundae draw the same 32x32 grid of the same tokens (512², their
    native size; 1024² comes from the SR net); the shipped tokenizer's decoder was fine-tuned alone,
    so it makes the tokens the priors learnt."""
    from nar.priors.base import default_grid
    from nar.tokenizer.load import tokenizer_hash
    metas = {m["name"]: m["meta"] for m in installed_models() if m["kind"] == "prior"}
    assert {name: default_grid(meta) for name, meta in metas.items()} == {name: (32, 32) for name in metas}
    tokens = tokenizer_hash(default_tokenizer_path())
    assert all(meta["tokenizer_hash"] == tokens for meta in metas.values())
    assert tuple(metas["ar"]["train_grid"]) == (32, 32)     # the whole grid is one sequence
    pipe = Pipeline.load(device="cpu")
    assert {name: pipe.native_size(name) for name in metas} == {name: 512 for name in metas}


def test_nar_models_lists_every_file():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "nar.cli", "models"], capture_output=True, text=True,
                         env={"COLUMNS": "250", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
                         cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert out.returncode == 0, out.stderr
    for m in installed_models():
        assert m["file"] in out.stdout
    assert "512² native (32x32 tokens)" in out.stdout  # the priors' draws, before super-resolution


def test_shipped_sundae_has_full_resolution_layers_and_its_chain_of_parents():
    """The default (v7): sundae v6 with one transformer layer on the 32x32 token grid before and after
    its valley, 300 steps more on fresh 512² renders. The patch grid moves every sampling step, it
    anneals up to 1.15 x the start temperature (1.1 before session 45), and its record keeps the chain
    of parents and says how the new layers began: sundae v6 (300 steps), from maskgit v4 (2500), from the
    4x4-merge 512² maskgit (3000).
    Since session 40 it draws with a nucleus filter of 0.98 unless the caller gives another (the weights unchanged);
    since session 45 its chain ends at 1.15 x the start temperature and a polishing pass gives every token the
    model finds less likely than 0.3 its most likely code; since session 49 guidance starts at 0.2 of the chain."""
    prior = Pipeline.load(device="cpu").prior("sundae")
    assert prior.cfg.shift_patches and prior.cfg.abs_positions and prior.cfg.box_corruption == 0.25
    assert tuple(prior.cfg.net.shorten) == (2,) and tuple(prior.cfg.net.depths) == (1, 8, 1)
    assert len({prior.patch_shift(t) for t in range(4)}) == 4
    meta = next(m["meta"] for m in installed_models() if (m["kind"], m["name"]) == ("prior", "sundae"))
    assert meta["training"]["steps"] == 300 and prior.cfg.temperature_end == 1.15 and prior.cfg.polish == 0.3
    assert prior.temperatures(3, 1.0, None) == pytest.approx([1.0, 1.075, 1.15])
    assert meta["training"]["data"].startswith("fresh procedural 512² renders")
    parent = meta["training"]["fine_tuned_from"]
    assert (parent["prior"], parent["step"]) == ("sundae", 300) and "identity" in parent["how"]
    grandparent = parent["training"]["fine_tuned_from"]
    assert (grandparent["prior"], grandparent["step"]) == ("maskgit", 2500)
    assert grandparent["training"]["fine_tuned_from"]["step"] == 3000
    assert prior.cfg.top_p == 0.98
    changes = [(c["key"], c["from"], c["to"]) for change in meta["sampling_changes"] for c in change["changes"]]
    assert changes == [("top_p", 1.0, 0.98), ("temperature_end", 1.1, 1.15), ("polish", 0.0, 0.3),
                       ("cfg_from", 0.0, 0.2)]
    assert prior.cfg.cfg_from == 0.2


def test_shipped_maskgit_is_the_2x2_merge_on_the_512_grid():
    """The default maskgit (v4): the 512² maskgit (v2 fine-tuned 3000 steps on 512² renders) with its
    4x4 outer merge refined to 2x2, a 2500-step schedule more; its record keeps both parents and says how,
    and the sampling defaults changed since (choice temperature 7, 20 steps; session 41: cells fixed in a
    2D Halton order at token temperature 0.65, inpainting's refinement still in confidence order;
    session 42: 32 steps; session 46: the token temperature cools from 0.8 to 0.6 over the steps, and
    inpainting keeps its constant fill temperature)."""
    prior = Pipeline.load(device="cpu").prior("maskgit")
    assert prior.cfg.shift_patches and prior.cfg.box_corruption == 0.25 and tuple(prior.cfg.net.shorten) == (2,)
    meta = next(m["meta"] for m in installed_models() if (m["kind"], m["name"]) == ("prior", "maskgit"))
    assert meta["training"]["steps"] == 2500
    assert meta["training"]["data"].startswith("fresh procedural 512² renders")
    parent = meta["training"]["fine_tuned_from"]
    assert parent["prior"] == "maskgit" and parent["step"] == 3000 and "2x2" in parent["how"]
    assert parent["training"]["fine_tuned_from"]["step"] == 200   # maskgit v2
    # session 22: sharper draws from more choice noise and 20 steps, the weights unchanged;
    # session 42: 32 steps, the Halton paper's count
    assert prior.cfg.choice_temperature == 7.0 and prior.cfg.steps == 32
    changes = [(c["key"], c["from"], c["to"]) for change in meta["sampling_changes"] for c in change["changes"]]
    assert changes == [("choice_temperature", 4.5, 7.0), ("steps", 12, 16), ("steps", 16, 20),
                       ("order", "confidence", "halton"), ("temperature", 1.0, 0.65), ("steps", 20, 32),
                       ("temperature", 0.65, 0.8), ("temperature_end", None, 0.75)]
    assert prior.cfg.order == "halton" and prior.resolve_temperature(None) == 0.8
    assert prior.cfg.temperature_end * prior.cfg.temperature == pytest.approx(0.6)   # the last step's
    from nar.sampling import INPAINT_OPTIONS, INPAINT_TEMPERATURE, inpaint_options
    assert INPAINT_OPTIONS["maskgit"]["order"] == "confidence" and INPAINT_TEMPERATURE == 0.7
    assert inpaint_options("maskgit", temperature=INPAINT_TEMPERATURE)["temperature_end"] == INPAINT_TEMPERATURE


def test_shipped_ar_read_fresh_renders_once_each_and_keeps_its_parents():
    """The default ar (v7): ar v6 trained on for a 500-step cosine on fresh 512² renders of a third
    stream (11), one new grid per sample; its record keeps ar v6 (stream 10), and through it ar v5 (step
    1200 of a cosine on stream 8), ar v4 (800 steps over the joined pool of 10 204 grids) and ar v3. It
    samples with a nucleus filter of 0.98 (session 27) at temperature 1 (1.1 in sessions 30-38; session 39
    moved the gradient to the pipeline's unsharp mask) unless the caller gives others, guided against its
    class's rivals since session 48."""
    prior = Pipeline.load(device="cpu").prior("ar")
    assert tuple(prior.train_grid) == (32, 32)
    assert prior.cfg.top_p == 0.98 and prior.resolve_top_p(None) == 0.98 and prior.resolve_top_p(1.0) == 1.0
    assert prior.cfg.temperature == 1.0 and prior.resolve_temperature(None) == 1.0 and prior.resolve_temperature(1.2) == 1.2
    meta = next(m["meta"] for m in installed_models() if (m["kind"], m["name"]) == ("prior", "ar"))
    assert meta["training"]["steps"] == 500 and meta["train"]["steps"] == 500
    assert "LandscapeDataset seed 11: 4064 grids by step 500" in meta["training"]["data"]
    v6 = meta["training"]["fine_tuned_from"]
    assert (v6["prior"], v6["step"]) == ("ar", 500)
    assert "LandscapeDataset seed 10: 4064 grids by step 500" in v6["training"]["data"]
    v5 = v6["training"]["fine_tuned_from"]
    assert (v5["prior"], v5["step"]) == ("ar", 1200)
    assert "LandscapeDataset seed 8: 9664 grids by step 1200" in v5["training"]["data"]
    v4 = v5["training"]["fine_tuned_from"]
    assert v4["step"] == 800 and v4["training"]["data"].startswith("10204 token grids 32x32 of fresh procedural landscapes")
    assert v4["training"]["fine_tuned_from"]["step"] == 600
    changes = [(c["key"], c["from"], c["to"]) for change in meta["sampling_changes"] for c in change["changes"]]
    assert changes == [("top_p", 1.0, 0.98), ("temperature", 1.0, 1.1), ("temperature", 1.1, 1.0),
                       ("guidance", "null", "contrast")]
    assert prior.cfg.guidance == "contrast"
    assert meta["step"] == 500   # v7's config
