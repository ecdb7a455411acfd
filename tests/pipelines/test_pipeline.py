"""The shared loader: lazy priors, decoder-only tokenizer until encoding, same seed -> same images
as `nar sample`, clear errors in the library's own words."""
import numpy as np
import pytest
import torch
from PIL import Image

import nar
from nar.core.errors import ArgumentError, NarError
from nar.pipelines import Pipeline
from nar.pipelines.sample import SampleSettings, run_sample


@pytest.fixture()
def pipe(tiny_models):
    return Pipeline.load(tokenizer=tiny_models["tokenizer"], priors=dict(tiny_models["priors"]), device="cpu")


def test_exported_from_the_package():
    assert nar.Pipeline is Pipeline


def test_priors_load_lazily_once_and_tokenizer_stays_decoder_only(pipe):
    assert pipe._priors == {} and pipe._decoder is None and pipe._full is None
    a = pipe.prior("maskgit")
    assert pipe.prior("maskgit") is a and not a.training
    assert list(pipe._priors) == ["maskgit"]
    pipe.sample(prior="maskgit", n=1, steps=1)
    assert pipe.tokenizer.decode_only
    tokens = pipe.encode(np.zeros((32, 32, 3), np.uint8))
    assert tokens.shape == (4, 4) and not pipe.tokenizer.decode_only
    batch = pipe.encode([Image.new("RGB", (32, 16))] * 3)
    assert batch.shape == (3, 2, 4)
    assert [im.size for im in pipe.decode(batch)] == [(32, 16)] * 3


def test_same_seed_same_images_as_nar_sample(pipe, tiny_models, tmp_path):
    for name in tiny_models["priors"]:
        s = SampleSettings(prior=name, n=2, steps=2, seed=3)
        result = run_sample(s, tmp_path / name, ckpt=tiny_models["priors"][name],
                            tokenizer=tiny_models["tokenizer"], device="cpu", log=lambda *_: None)
        out = pipe.sample(prior=name, n=2, steps=2, seed=3)
        assert out.tokens.shape == (2, 4, 4) and out.tokens.dtype == torch.long
        for image, file in zip(out.images, result["files"]):
            assert np.array_equal(np.asarray(image), np.asarray(Image.open(file).convert("RGB")))
        assert out.settings["seed"] == 3 and out.settings["grid"] == [4, 4]


def test_class_ids_callback_and_errors(pipe, tiny_models):
    seen = []
    out = pipe.sample(prior="sundae", n=2, steps=2, cond=[0, 1], callback=lambda *a: seen.append(a))
    assert out.tokens.shape == (2, 4, 4) and seen and seen[-1][1] >= 1
    with pytest.raises(ArgumentError, match="3 class ids given for 2 images"):
        pipe.sample(prior="sundae", n=2, cond=[0, 1, 0])
    with pytest.raises(ArgumentError, match="top_k") as excinfo:
        pipe.sample(prior="maskgit", n=1, top_k=0)
    assert "--" not in str(excinfo.value)
    with pytest.raises(NarError, match="registered"):
        pipe.prior("nope")
    wrong = Pipeline.load(tokenizer=tiny_models["tokenizer"], priors={"sundae": tiny_models["tokenizer"]},
                          device="cpu")
    with pytest.raises(NarError, match="tokenizer checkpoint"):
        wrong.prior("sundae")
    with pytest.raises(NarError, match="not 'ar'"):
        Pipeline.load(tokenizer=tiny_models["tokenizer"], priors={"ar": tiny_models["priors"]["maskgit"]},
                      device="cpu").prior("ar")


def test_inpaint_keeps_unmasked_pixels(pipe):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(20, 28, 3), dtype=np.uint8)
    mask = np.zeros((20, 28), bool)
    mask[4:12, 8:20] = True
    out = pipe.inpaint(Image.fromarray(image), mask, prior="maskgit", steps=2, seed=1)
    result = np.asarray(out.images[0])
    assert result.shape == image.shape and np.array_equal(result[~mask], image[~mask])
    assert out.settings["tokens_regenerated"] > 0
    with pytest.raises(NarError, match="empty"):
        pipe.inpaint(image, np.zeros((20, 28), bool))


def test_inpaint_samples_cooler_than_free_generation(pipe, monkeypatch):
    """Inpainting's default temperature is INPAINT_TEMPERATURE (< 1); an explicit one, or None
    (free sampling's: the prior's own, 1 for maskgit), reaches the prior."""
    from nar.sampling import INPAINT_TEMPERATURE
    prior = pipe.prior("maskgit")
    seen, sample = [], prior.sample
    monkeypatch.setattr(prior, "sample", lambda *a, **k: seen.append(k.get("temperature")) or sample(*a, **k))
    image, mask = np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16), bool)
    mask[4:12, 4:12] = True
    for temperature in ("default", 1.0, None):
        kwargs = {} if temperature == "default" else {"temperature": temperature}
        pipe.inpaint(image, mask, prior="maskgit", steps=2, **kwargs)
    assert 0 < INPAINT_TEMPERATURE < 1 and seen == [INPAINT_TEMPERATURE, 1.0, None]
    assert prior.resolve_temperature(None) == 1.0


def test_inpaint_refines_maskgit_fills_unless_told_otherwise(pipe):
    """INPAINT_OPTIONS: a maskgit fill starts from its mirrored border and runs its refinement
    rounds (recorded in the settings); the caller's own options win; free sampling stays unrefined."""
    from nar.sampling import INPAINT_OPTIONS
    rounds, steps = INPAINT_OPTIONS["maskgit"]["refine_rounds"], INPAINT_OPTIONS["maskgit"]["refine_steps"]
    image, mask = np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16), bool)
    mask[4:12, 4:12] = True
    out = pipe.inpaint(image, mask, prior="maskgit", steps=2)
    assert rounds > 0 and out.settings["options"]["refine_rounds"] == rounds
    assert out.settings["options"]["init"] == "reflect" and 0 < out.steps_run <= rounds * steps   # no decoding steps
    assert out.settings["options"]["order"] == "confidence"   # the refinement as measured, whatever free sampling uses
    plain = pipe.inpaint(image, mask, prior="maskgit", steps=2, init="mask", refine_rounds=0)
    assert plain.steps_run == 2 and plain.settings["options"]["refine_rounds"] == 0
    assert pipe.sample(prior="maskgit", n=1, steps=2).steps_run == 2
    assert "options" not in pipe.inpaint(image, mask, prior="sundae", steps=2).settings  # sundae's own defaults


def test_precision_is_chosen_recorded_and_bf16_decodes_close_to_fp32(tiny_models):
    load = lambda precision: Pipeline.load(tokenizer=tiny_models["tokenizer"],  # noqa: E731
                                           priors=dict(tiny_models["priors"]), device="cpu", precision=precision)
    fp32, bf16 = load("fp32"), load("bf16")
    out = bf16.sample(prior="sundae", n=2, steps=2, seed=1)
    assert out.settings["precision"] == {"prior": "bf16", "decoder": "bf16"}
    assert fp32.sample(prior="sundae", n=1, steps=1).settings["precision"] == {"prior": "fp32", "decoder": "fp32"}
    # the same tokens decoded both ways: bf16 rounding moves pixels by a few levels at most
    a, b = fp32.decode_tensor(out.tokens), bf16.decode_tensor(out.tokens)
    assert a.dtype == b.dtype == torch.float32
    assert 0 < (a - b).abs().max() < 0.05 * (a.abs().max() + 1)
    with pytest.raises(NarError, match="precision must be one of"):
        load("fp16")


def test_every_front_door_fills_with_the_same_default_prior():
    """`nar inpaint`, `Pipeline.inpaint` and `POST /inpaint` use one default prior (the measured
    best inpainter, nar.sampling.INPAINT_PRIOR), not each its own."""
    import inspect

    from nar.cli import inpaint as cli_inpaint
    from nar.sampling import INPAINT_PRIOR
    from nar.serve.app import InpaintRequest
    assert INPAINT_PRIOR == "maskgit"
    assert inspect.signature(Pipeline.inpaint).parameters["prior"].default == INPAINT_PRIOR
    assert inspect.signature(cli_inpaint).parameters["prior"].default.default == INPAINT_PRIOR
    assert InpaintRequest(image="x", mask="y").prior == INPAINT_PRIOR


def test_settings_record_the_top_p_a_prior_sampled_with(pipe, monkeypatch):
    """A prior's config may carry its own nucleus filter (ar's ``top_p``): what the images'
    settings record is the filter that ran, the caller's or else the prior's."""
    import dataclasses
    prior = pipe.prior("ar")
    monkeypatch.setattr(prior, "cfg", dataclasses.replace(prior.cfg, top_p=0.9))
    image, mask = np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16), bool)
    mask[4:12, 4:12] = True
    assert pipe.sample(prior="ar", n=1).settings["top_p"] == 0.9
    assert pipe.sample(prior="ar", n=1, top_p=1.0).settings["top_p"] == 1.0
    assert pipe.inpaint(image, mask, prior="ar").settings["top_p"] == 0.9
    assert "top_p" not in pipe.sample(prior="maskgit", n=1, steps=1).settings   # no filter of its own


def test_settings_record_the_temperature_a_prior_sampled_at(pipe, monkeypatch):
    """A prior's config may carry its own temperature (ar's): free sampling uses it unless told
    otherwise, inpainting keeps its own cooler default, and the settings record what ran."""
    import dataclasses
    from nar.sampling import INPAINT_TEMPERATURE
    prior = pipe.prior("ar")
    monkeypatch.setattr(prior, "cfg", dataclasses.replace(prior.cfg, temperature=1.3))
    warm = pipe.sample(prior="ar", n=1, seed=5)
    assert warm.settings["temperature"] == 1.3
    assert torch.equal(warm.tokens, pipe.sample(prior="ar", n=1, seed=5, temperature=1.3).tokens)
    assert pipe.sample(prior="ar", n=1, temperature=1.0).settings["temperature"] == 1.0
    image, mask = np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16), bool)
    mask[4:12, 4:12] = True
    assert pipe.inpaint(image, mask, prior="ar").settings["temperature"] == INPAINT_TEMPERATURE
    assert pipe.inpaint(image, mask, prior="ar", temperature=None).settings["temperature"] == 1.3
    assert pipe.sample(prior="maskgit", n=1, steps=1).settings["temperature"] == 1.0   # none of its own
