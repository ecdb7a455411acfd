"""End to end through the `nar` command line on tiny models: sampling, inpainting, errors."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nar.priors import prior_names

PRIORS = prior_names()


def nar(*args, cwd=None):
    """Run the real console entry point in a subprocess (exit codes and stderr as users see them)."""
    return subprocess.run([sys.executable, "-m", "nar.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={"PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[2]),
                                        "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


def sample_args(models, name, out, *extra):
    return ["sample", "--prior", name, "--ckpt", models["priors"][name], "--tokenizer", models["tokenizer"],
            "--n", 2, "--steps", 2, "--seed", 3, "--device", "cpu", "--out", out, *extra]


@pytest.mark.parametrize("name", PRIORS)
def test_sample_writes_pngs_with_settings_and_is_deterministic(tiny_models, tmp_path, name):
    r = nar(*sample_args(tiny_models, name, tmp_path / "a"))
    assert r.returncode == 0, r.stderr
    files = sorted((tmp_path / "a").glob("*.png"))
    assert len(files) == 3  # two images + grid
    img = Image.open(files[0])
    assert img.size == (32, 32)
    settings = json.loads(img.text["nar"])
    assert settings["prior"] == name and settings["seed"] == 3 and settings["grid"] == [4, 4]
    r2 = nar(*sample_args(tiny_models, name, tmp_path / "b"))
    assert r2.returncode == 0, r2.stderr
    for f in files:
        assert np.array_equal(np.asarray(Image.open(f)), np.asarray(Image.open(tmp_path / "b" / f.name)))


@pytest.mark.parametrize("extra, message", [
    (["--n", 0], "--n"), (["--steps", 0], "--steps"), (["--temperature", -1], "temperature"),
    (["--top-p", 1.5], "top-p"), (["--top-k", 0], "top-k"), (["--class", "volcano"], "unknown class 'volcano'"),
    (["--size", 30], "multiple"),
])
def test_bad_sampling_options_fail_cleanly(tiny_models, tmp_path, extra, message):
    out = tmp_path / "out"
    r = nar(*sample_args(tiny_models, "maskgit", out), *extra)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not out.exists() or not any(out.iterdir())  # nothing written


def test_prior_options_reach_the_sampler_and_bad_ones_name_the_flag(tiny_models, tmp_path):
    """--option KEY=VALUE passes a prior's own option (maskgit's refinement: 2 more steps run)."""
    r = nar(*sample_args(tiny_models, "maskgit", tmp_path / "a", "--option", "refine_rounds=1",
                         "--option", "refine_steps=2"))
    assert r.returncode == 0, r.stderr
    assert "4 step(s) run" in r.stdout.replace("\n", " ")
    settings = json.loads(Image.open(sorted((tmp_path / "a").glob("*.png"))[0]).text["nar"])
    assert settings["options"]["refine_rounds"] == 1
    for option, message in (("bogus=1", "unknown sampling option"), ("refine_ratio", "KEY=VALUE"),
                            ("refine_ratio=3", "--option refine_ratio=")):
        r = nar(*sample_args(tiny_models, "maskgit", tmp_path / "b", "--option", option))
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_bad_checkpoints_fail_cleanly(tiny_models, tmp_path):
    pt = tmp_path / "evil.pt"
    pt.write_bytes(pickle.dumps({"x": 1}))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    cases = [(tmp_path / "missing.safetensors", "not found"), (pt, "pickle"), (junk, "not a nar"),
             (tiny_models["priors"]["maskgit"], "not 'sundae'"), (tiny_models["tokenizer"], "tokenizer checkpoint")]
    for ckpt, message in cases:
        r = nar("sample", "--prior", "sundae", "--ckpt", ckpt, "--tokenizer", tiny_models["tokenizer"],
                "--out", tmp_path / "o", "--device", "cpu")
        assert r.returncode == 2 and message in r.stderr, (ckpt, r.stderr)
    r = nar("sample", "--prior", "nope", "--out", tmp_path / "o")
    assert r.returncode == 2 and "registered: ar, maskgit, sundae" in r.stderr


def test_train_refuses_bad_token_caches(tmp_path):
    r = nar("train", "--prior", "ar", "--tokens", tmp_path / "none", "--out", tmp_path / "run")
    assert r.returncode == 2 and "token cache not found" in r.stderr
    r = nar("train", "--prior", "ar", "--out", tmp_path / "run")
    assert r.returncode == 2 and "--tokens" in r.stderr and "--fresh" in r.stderr
    r = nar("train", "--prior", "ar", "--fresh", 100, "--tokenizer", tmp_path / "none.safetensors", "--out", tmp_path / "run")
    assert r.returncode == 2 and "none.safetensors" in r.stderr


def test_train_on_fresh_renders_takes_the_stream_seed(tiny_models, tmp_path):
    """--fresh-seed picks the stream of scenes; the run and its pool record it."""
    config = Path(__file__).parents[2] / "configs" / "priors" / "maskgit_tiny.toml"
    r = nar("train", "--prior", "maskgit", "--fresh", 32, "--fresh-seed", 3, "--fresh-workers", 0,
            "--fresh-initial", 2, "--tokenizer", tiny_models["tokenizer"], "--config", config,
            "--set", "train.steps=1", "--set", "train.batch_size=2", "--set", "train.snapshot_every=0",
            "--set", "train.device=cpu", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "run" / "fresh_schedule.json").read_text())["seed"] == 3
    header = json.loads((tmp_path / "run" / "fresh_tokens" / "header.json").read_text())
    assert header["source"].endswith("seed 3")
    # the grids it made join into a token cache another run can read once each
    r = nar("tokenizer", "join-pools", tmp_path / "run" / "fresh_tokens", "--out", tmp_path / "joined")
    assert r.returncode == 0, r.stderr
    assert "(4 grids of 4x4 tokens)" in " ".join(r.stdout.split())
    r = nar("tokenizer", "join-pools", tmp_path / "none", "--out", tmp_path / "joined2")
    assert r.returncode == 2 and "is not a pool of fresh tokens" in r.stderr


@pytest.mark.parametrize("name", PRIORS)
def test_inpaint_keeps_unmasked_pixels(tiny_models, tmp_path, name):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(37, 45, 3), dtype=np.uint8)  # not a multiple of f = 8
    Image.fromarray(image).save(tmp_path / "in.png")
    mask = np.zeros((37, 45), np.uint8)
    mask[8:24, 10:30] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    r = nar("inpaint", "--prior", name, "--image", tmp_path / "in.png", "--mask", tmp_path / "mask.png",
            "--out", tmp_path / "out.png", "--ckpt", tiny_models["priors"][name],
            "--tokenizer", tiny_models["tokenizer"], "--steps", 2, "--device", "cpu")
    assert r.returncode == 0, r.stderr
    out = np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))
    assert out.shape == image.shape
    kept = mask == 0
    assert np.array_equal(out[kept], image[kept])
    assert not np.array_equal(out[~kept], image[~kept])


def test_inpaint_errors(tiny_models, tmp_path):
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "in.png")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "small_mask.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "empty_mask.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    base = ["inpaint", "--prior", "sundae", "--ckpt", tiny_models["priors"]["sundae"],
            "--tokenizer", tiny_models["tokenizer"], "--out", tmp_path / "o.png", "--device", "cpu"]
    cases = [(["--image", tmp_path / "in.png", "--mask", tmp_path / "small_mask.png"], "16x16"),
             (["--image", tmp_path / "in.png", "--mask", tmp_path / "empty_mask.png"], "empty"),
             (["--image", tmp_path / "broken.png", "--box", "0,0,8,8"], "cannot read image"),
             (["--image", tmp_path / "in.png"], "exactly one of")]
    for extra, message in cases:
        r = nar(*base, *extra)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, (extra, r.stderr)
    assert not (tmp_path / "o.png").exists()


def test_sample_never_overwrites_without_flag(tiny_models, tmp_path):
    assert nar(*sample_args(tiny_models, "maskgit", tmp_path)).returncode == 0
    r = nar(*sample_args(tiny_models, "maskgit", tmp_path))
    assert r.returncode == 2 and "exists" in r.stderr
    assert nar(*sample_args(tiny_models, "maskgit", tmp_path), "--overwrite").returncode == 0


@pytest.mark.parametrize("name", ["maskgit", "sundae"])
def test_nothing_of_the_original_survives_under_the_mask(tiny_models, name):
    """Default settings: two images that differ only under the mask inpaint to the same pixels
    (the encoder never sees the masked pixels, no feather mixes them back); kept pixels stay."""
    import numpy as np
    from nar.pipelines.pipeline import Pipeline
    pipe = Pipeline.load(tokenizer=tiny_models["tokenizer"], priors={name: tiny_models["priors"][name]},
                         device="cpu")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), bool)
    mask[8:24, 4:20] = True
    ghost = image.copy()
    ghost[mask] = 255 - ghost[mask]
    a = np.asarray(pipe.inpaint(image, mask, prior=name, seed=3).images[0])
    b = np.asarray(pipe.inpaint(ghost, mask, prior=name, seed=3).images[0])
    assert np.array_equal(a, b)
    assert np.array_equal(a[~mask], image[~mask])
    # asking for a feather band brings original pixels back near the border only
    c = np.asarray(pipe.inpaint(image, mask, prior=name, seed=3, feather=2).images[0])
    d = np.asarray(pipe.inpaint(ghost, mask, prior=name, seed=3, feather=2).images[0])
    assert not np.array_equal(c, d) and np.array_equal(c[12:20, 8:16], d[12:20, 8:16])
