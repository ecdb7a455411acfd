"""Sizes above a prior's native one (the scenes it learnt: data grid x tokenizer factor) are drawn
at the native size and 2x super-resolved, in `Pipeline.sample` and `Pipeline.inpaint` alike."""
import numpy as np
import pytest
import torch
from PIL import Image

from nar.core.errors import ArgumentError, NarError
from nar.pipelines import Pipeline
from nar.pipelines.masks import downscale_for_fill
from nar.pipelines.upscale import SHARPEN, load_sr, upscale


@pytest.fixture()
def pipe(tiny_models):   # tiny priors learnt 32² scenes (4x4 tokens of a factor-8 tokenizer)
    return Pipeline.load(tokenizer=tiny_models["tokenizer"], priors=dict(tiny_models["priors"]), device="cpu")


def test_native_size_is_the_data_grid_times_the_factor(pipe, tiny_models):
    for name in tiny_models["priors"]:
        assert pipe.native_size(name) == 32


@pytest.mark.parametrize("size,passes", [(64, 1), (128, 2)])
def test_sample_above_native_is_the_native_draw_super_resolved(pipe, tiny_sr, size, passes):
    out = pipe.sample(prior="maskgit", n=2, size=size, steps=1, seed=5, sr_ckpt=tiny_sr)
    assert [im.size for im in out.images] == [(size, size)] * 2
    assert out.tokens.shape == (2, 4, 4)                      # the grid that was drawn
    sr = out.settings["super_resolution"]
    assert sr["passes"] == passes and sr["generated_size"] == [32, 32] and sr["scale"] == 2 ** passes
    assert out.settings["size"] == size and out.settings["image_size"] == [size, size]
    native = pipe.sample(prior="maskgit", n=2, size=32, steps=1, seed=5)
    assert torch.equal(native.tokens, out.tokens) and "super_resolution" not in native.settings
    assert sr["sharpen"] == SHARPEN > 0
    model = load_sr(tiny_sr)
    for drawn, final in zip(native.images, out.images):
        for i in range(passes):   # generated images: the first pass's output sharpened
            drawn = upscale(drawn, model, sharpen=SHARPEN if i == 0 else 0.0)
        assert np.array_equal(np.asarray(drawn), np.asarray(final))


def test_sample_sharpen_is_an_option_and_zero_is_the_plain_sr(pipe, tiny_sr):
    plain = pipe.sample(prior="maskgit", n=1, size=64, steps=1, seed=5, sr_ckpt=tiny_sr, sharpen=0)
    native = pipe.sample(prior="maskgit", n=1, size=32, steps=1, seed=5)
    assert plain.settings["super_resolution"]["sharpen"] == 0.0
    assert np.array_equal(np.asarray(plain.images[0]), np.asarray(upscale(native.images[0], load_sr(tiny_sr))))
    sharp = pipe.sample(prior="maskgit", n=1, size=64, steps=1, seed=5, sr_ckpt=tiny_sr, sharpen=2.0)
    assert not np.array_equal(np.asarray(plain.images[0]), np.asarray(sharp.images[0]))
    with pytest.raises(ArgumentError, match="sharpening amount"):
        pipe.sample(prior="maskgit", n=1, size=64, steps=1, sr_ckpt=tiny_sr, sharpen=-1)


def test_sample_above_native_errors(pipe, tmp_path):
    with pytest.raises(NarError, match="super-resolution checkpoint not found"):
        pipe.sample(prior="maskgit", n=1, size=64, steps=1, sr_ckpt=tmp_path / "none.safetensors")
    with pytest.raises(NarError, match="factor"):
        pipe.sample(prior="maskgit", n=1, size=40, steps=1)   # drawn at 20²: not whole tokens


def test_inpaint_above_native_fills_at_native_and_keeps_every_kept_pixel(pipe, tiny_sr):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(56, 64, 3), dtype=np.uint8)
    mask = np.zeros((56, 64), bool)
    mask[10:40, 20:50] = True
    out = pipe.inpaint(Image.fromarray(image), mask, prior="maskgit", steps=1, seed=1, sr_ckpt=tiny_sr)
    result = np.asarray(out.images[0])
    assert result.shape == image.shape and np.array_equal(result[~mask], image[~mask])
    assert not np.array_equal(result[mask], image[mask])
    assert out.settings["super_resolution"] == {"passes": 1, "fill_size": [28, 32]}
    assert out.settings["tokens_total"] == 16   # a 4x4 grid: the 28x32 fill padded to whole tokens


def test_downscale_for_fill_averages_pixels_and_keeps_any_regenerated_cell():
    image = np.arange(6 * 4 * 3, dtype=np.uint8).reshape(6, 4, 3)
    mask = np.zeros((6, 4), bool)
    mask[5, 0] = True                                   # one pixel of the last (padded) row of cells
    small, cells = downscale_for_fill(image, mask, 4)
    assert small.shape == (2, 1, 3) and cells.shape == (2, 1)
    assert cells.tolist() == [[False], [True]]
    assert np.array_equal(small[0, 0], np.round(image[:4].reshape(-1, 3).mean(0)).astype(np.uint8))
    same, same_mask = downscale_for_fill(image, mask, 1)
    assert same is image and same_mask is mask
