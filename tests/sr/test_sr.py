"""2x super-resolution: the net's shape and start, tiling, training (loss down, exact resume),
`nar upscale` / `nar sr` on tiny models, and the one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from nar.core.checkpoint import load_checkpoint
from nar.core.errors import NarError
from nar.sr.model import SRModelConfig, SRNet

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "sr" / "tiny.toml"


def tiny_net(seed: int = 0) -> SRNet:
    torch.manual_seed(seed)
    net = SRNet(SRModelConfig(channels=8, blocks=2)).eval()
    torch.nn.init.normal_(net.tail.weight, std=0.05)   # a trained-like tail, not the zero start
    return net


def test_shape_scale_and_bicubic_start():
    net = SRNet(SRModelConfig(channels=8, blocks=1))
    x = torch.rand(2, 3, 12, 20) * 2 - 1
    y = net(x)
    assert y.shape == (2, 3, 24, 40)
    # the zero-initialised last layer makes an untrained net exactly bicubic
    assert torch.equal(y, F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False))
    assert SRNet(SRModelConfig(scale=3, channels=4, blocks=0))(x).shape == (2, 3, 36, 60)


def test_tiled_equals_untiled():
    from nar.pipelines.upscale import tile_overlap, upscale_tensor
    net = tiny_net()
    x = torch.rand(1, 3, 70, 90) * 2 - 1
    whole = upscale_tensor(x, net, tile=None)
    tiled = upscale_tensor(x, net, tile=2 * tile_overlap(net) + 8)   # 3x2 tiles
    assert tiled.shape == whole.shape == (1, 3, 140, 180)
    assert float((tiled - whole).abs().max()) * 127.5 < 1.0   # within 1/255 of the [0, 1] range
    assert float((tiled - whole).abs().max()) < 1e-4


def test_pairs_are_aligned_crops_of_one_scene():
    from nar.train.sr_task import SRTask, load_sr_config, render_pair
    cfg = load_sr_config(TINY)
    task = SRTask(cfg, build_perceptual=False)
    lo, hi = task.pairs.batch(4, torch.Generator().manual_seed(1))
    assert lo.shape == (4, 3, 16, 16) and hi.shape == (4, 3, 32, 32)
    # the default input is the 2x render box-averaged: exactly the 2x-supersampled 1x render
    a, b = render_pair(12345, 64)
    assert a.shape == (3, 64, 64) and b.shape == (3, 128, 128)
    assert float((F.avg_pool2d(b[None], 2) - a[None]).abs().max()) <= 1 / 255 + 1e-6
    # a plain 1x render of the same scene is close to it, but is not it
    plain, b2 = render_pair(12345, 64, low_res="render")
    assert torch.equal(b, b2)
    assert 0 < float((plain - a).abs().mean()) < 0.05
    with pytest.raises(NarError, match="low-res"):
        render_pair(12345, 64, low_res="bicubic")


def test_decoded_inputs_are_the_tokenizer_round_trip_of_the_supersampled_render(tiny_models):
    from nar.tokenizer.load import load_tokenizer
    from nar.train.sr_task import SRTask, load_sr_config, render_pair
    tok = load_tokenizer(tiny_models["tokenizer"])
    clean, hi = render_pair(12345, 32)
    decoded, hi2 = render_pair(12345, 32, low_res="decoded", tokenizer=tok)
    assert torch.equal(hi, hi2) and decoded.shape == clean.shape
    expected = tok.decode_tokens(tok.encode(clean[None]))[0].clamp(-1, 1)
    assert float((decoded - expected).abs().max()) <= 1 / 255 + 1e-6          # 8-bit, as decoded images are
    assert torch.allclose((decoded + 1) * 127.5, ((decoded + 1) * 127.5).round(), atol=1e-4)
    assert float((decoded - clean).abs().mean()) > 0.01                      # the round trip changed it
    with pytest.raises(NarError, match="needs a tokenizer"):
        render_pair(12345, 32, low_res="decoded")
    overrides = {"data.low_res": "decoded", "data.tokenizer": str(tiny_models["tokenizer"]), "data.lr_sizes": [32]}
    task = SRTask(load_sr_config(TINY, overrides), build_perceptual=False)
    lo, hi = task.pairs.batch(2, torch.Generator().manual_seed(0))
    assert lo.shape == (2, 3, 16, 16) and hi.shape == (2, 3, 32, 32)
    with pytest.raises(NarError, match="multiples of the tokenizer's factor"):
        SRTask(load_sr_config(TINY, {**overrides, "data.lr_sizes": [33]}), build_perceptual=False)


def test_training_can_start_from_an_sr_checkpoint(tiny_sr, tmp_path):
    from nar.pipelines.upscale import load_sr
    from nar.train.sr_task import train_sr
    parent = load_sr(tiny_sr)
    net = {"model.channels": 8, "model.blocks": 2}
    run = train_sr(TINY, {**net, "train.steps": 2}, tmp_path / "child", progress=False, init_from=tiny_sr)
    started, _ = load_checkpoint(run / "model.safetensors")
    fresh = train_sr(TINY, {**net, "train.steps": 2}, tmp_path / "fresh", progress=False)
    other, _ = load_checkpoint(fresh / "model.safetensors")
    # two small steps from the parent stay near it; a fresh start does not
    near = max(float((started[k] - v).abs().max()) for k, v in parent.state_dict().items())
    far = max(float((other[k] - v).abs().max()) for k, v in parent.state_dict().items())
    assert near < far
    with pytest.raises(NarError, match="is not this config"):
        train_sr(TINY, {"train.steps": 2}, tmp_path / "other", progress=False, init_from=tiny_sr)


def test_crop_candidates_pick_the_busiest_of_the_same_placements():
    from nar.core.images import gradient_activity
    from nar.train.sr_task import SRTask, load_sr_config
    plain = SRTask(load_sr_config(TINY), build_perceptual=False)
    picky = SRTask(load_sr_config(TINY, {"data.crop_candidates": 6}), build_perceptual=False)
    _, hi_plain = plain.pairs.batch(8, torch.Generator().manual_seed(3))
    lo, hi = picky.pairs.batch(8, torch.Generator().manual_seed(3))
    assert lo.shape == (8, 3, 16, 16) and hi.shape == (8, 3, 32, 32)
    activity = lambda batch: sum(gradient_activity(x) for x in batch) / len(batch)
    assert activity(hi) > activity(hi_plain)
    assert gradient_activity(torch.zeros(3, 8, 8)) == 0.0
    with pytest.raises(NarError, match="crop_candidates"):
        load_sr_config(TINY, {"data.crop_candidates": 0})


def test_loss_goes_down_on_a_fixed_batch():
    from nar.train.sr_task import SRTask, load_sr_config
    cfg = load_sr_config(TINY, {"model.channels": 16, "model.blocks": 2, "loss.disc_weight": 0.0,
                                "data.lr_sizes": [96], "data.crop": 32})
    task = SRTask(cfg, build_perceptual=False)
    lo, hi = task.pairs.batch(8, torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(task.model.parameters(), lr=2e-3)
    losses = []
    for _ in range(60):
        loss, _ = task.losses.generator_loss(hi, task.model(lo), 0, task.model.last_layer)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.95 * losses[0]   # from the bicubic start


def test_training_resumes_exactly(tmp_path):
    from nar.train.sr_task import train_sr
    train_sr(TINY, None, tmp_path / "full", progress=False)
    train_sr(TINY, None, tmp_path / "cut", progress=False, until=6)
    train_sr(TINY, None, tmp_path / "cut", progress=False)
    a, meta = load_checkpoint(tmp_path / "full" / "model.safetensors")
    b, _ = load_checkpoint(tmp_path / "cut" / "model.safetensors")
    assert meta["kind"] == "sr" and meta["step"] == 12
    for k in a:
        assert torch.equal(a[k], b[k]), k
    logged = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [2, 4, 6, 8, 10, 12]
    assert "d_loss" in logged[-1]   # the discriminator switched on at disc_start


# ---- command line ---------------------------------------------------------------------------
def nar(*args):
    return subprocess.run([sys.executable, "-m", "nar.cli", *map(str, args)], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


def test_upscale_cli_writes_2x_png_with_metadata(tiny_sr, tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 100, 3), dtype=np.uint8)).save(src)
    r = nar("upscale", src, "--out", tmp_path / "out.png", "--ckpt", tiny_sr, "--tile", 48)
    assert r.returncode == 0, r.stderr
    out = Image.open(tmp_path / "out.png")
    assert out.size == (200, 120)
    info = json.loads(out.text["nar"])["upscaled"]
    assert info["from"] == [100, 60] and info["to"] == [200, 120]
    # tiled (48-pixel tiles) and untiled give the same picture
    r = nar("upscale", src, "--out", tmp_path / "whole.png", "--ckpt", tiny_sr, "--tile", 0)
    assert r.returncode == 0, r.stderr
    diff = np.abs(np.asarray(out, np.int16) - np.asarray(Image.open(tmp_path / "whole.png"), np.int16))
    assert diff.max() <= 1


@pytest.mark.parametrize("case", ["not_an_image", "zero_size", "too_large", "missing", "no_model"])
def test_upscale_bad_input_is_one_line_exit_2(tiny_sr, tmp_path, case):
    src = tmp_path / "in.png"
    ckpt = tiny_sr
    if case == "not_an_image":
        src.write_text("hello")
    elif case == "zero_size":
        src.write_bytes(b"")
    elif case == "too_large":   # header says 5000x4000: refused before decoding
        Image.new("RGB", (5000, 4000)).save(src, compress_level=1)
    elif case == "missing":
        src = tmp_path / "nope.png"
    elif case == "no_model":
        Image.new("RGB", (8, 8)).save(src)
        ckpt = tmp_path / "nope.safetensors"
    r = nar("upscale", src, "--out", tmp_path / "out.png", "--ckpt", ckpt)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out.png").exists()


def test_sample_plan():
    from nar.core.errors import NarError
    from nar.pipelines.upscale import sample_plan
    assert sample_plan(2048) == (1024, 1)      # the shipped set's native 1024²
    assert sample_plan(1024) == (1024, 0)
    assert sample_plan(None) == (None, 0)
    assert sample_plan(1536) == (768, 1)       # halved once to at most native
    assert sample_plan(1024, native=512) == (512, 1)
    assert sample_plan(2048, native=512) == (512, 2)
    assert sample_plan(256, native=512) == (256, 0)
    assert sample_plan(4096, native=None) == (4096, 0)   # unknown native size: drawn as asked
    with pytest.raises(NarError):
        sample_plan(2049)


def test_upscale_output_doubles_images_and_says_so(tiny_sr):
    from nar.pipelines.pipeline import PipelineOutput
    from nar.pipelines.upscale import SHARPEN, upscale_output
    images = [Image.new("RGB", (24, 24), (10 * i, 50, 90)) for i in range(2)]
    out = PipelineOutput(images=images, tokens=torch.zeros(2, 3, 3, dtype=torch.long),
                         settings={"size": 24, "image_size": [24, 24]}, seconds_total=1.0)
    out = upscale_output(out, tiny_sr)
    assert [im.size for im in out.images] == [(48, 48)] * 2
    assert out.settings["size"] == 48 and out.settings["image_size"] == [48, 48]
    sr = out.settings["super_resolution"]
    assert sr["scale"] == 2 and sr["generated_size"] == [24, 24] and sr["sr_ckpt"] == str(tiny_sr)
    assert sr["sharpen"] == SHARPEN
    assert out.seconds_total >= 1.0


def test_unsharp_mask_steepens_edges_keeps_flat_areas_and_range():
    from torchvision.transforms.v2.functional import gaussian_blur
    from nar.pipelines.upscale import unsharp_mask
    flat = torch.full((2, 3, 32, 32), 0.3)
    assert torch.allclose(unsharp_mask(flat, 1.0), flat, atol=1e-6)        # nothing to sharpen
    step = torch.full((1, 3, 32, 32), -0.4)
    step[..., 16:] = 0.4
    soft = gaussian_blur(step, [7, 7], [1.0, 1.0])                          # a blurred edge
    sharp = unsharp_mask(soft, 1.0)
    slope = lambda x: float((x[..., 1:] - x[..., :-1]).abs().max())       # noqa: E731
    assert slope(sharp) > 1.2 * slope(soft)
    assert torch.allclose(sharp[..., :, :8], soft[..., :, :8], atol=1e-3)  # far from the edge: unchanged
    assert sharp.min() >= -1 and sharp.max() <= 1
    assert unsharp_mask(step * 3, 1.0).abs().max() <= 1                    # clamped
    assert torch.equal(unsharp_mask(soft, 0.0), soft)
    with pytest.raises(NarError, match=">= 0"):
        unsharp_mask(soft, -0.5)


def test_upscale_sharpens_only_the_first_pass(tiny_sr):
    from nar.pipelines.upscale import load_sr, unsharp_mask, upscale_tensor
    model = load_sr(tiny_sr)
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    once = upscale_tensor(x, model, sharpen=0.75)
    assert torch.allclose(once, unsharp_mask(upscale_tensor(x, model), 0.75))
    twice = upscale_tensor(x, model, passes=2, sharpen=0.75)
    assert torch.allclose(twice, upscale_tensor(once, model))
    assert torch.equal(upscale_tensor(x, model, sharpen=0.0), upscale_tensor(x, model))


def test_bench_settings_reject_a_negative_sharpen():
    from nar.core.errors import ArgumentError
    from nar.pipelines.bench import BenchSettings
    from nar.pipelines.upscale import SHARPEN
    assert BenchSettings().sharpen_amount == SHARPEN and BenchSettings(sharpen=0).sharpen_amount == 0
    with pytest.raises(ArgumentError, match="sharpening"):
        BenchSettings(sharpen=-1.0).validate()


class _RandomPrior(torch.nn.Module):
    """A stand-in prior: random tokens, no network."""
    default_steps = 1

    def __init__(self):
        super().__init__()
        self.name, self.train_grid, self.w = "rand", (4, 4), torch.nn.Parameter(torch.zeros(1))

    def check_grid(self, grid):
        return grid

    def sample(self, n, grid, steps=None, generator=None, **kw):
        from nar.priors.base import SampleOutput
        return SampleOutput(tokens=torch.randint(64, (n, *grid), generator=generator), steps_run=1, forward_passes=1)


def test_bench_rows_above_the_sr_threshold_add_the_upscale(tiny_sr, monkeypatch):
    import nar.pipelines.upscale as up
    from nar.core.config import load_config
    from nar.pipelines.bench import BenchEntry, BenchSettings, run_bench
    from nar.tokenizer.config import TokenizerConfig
    from nar.tokenizer.model import VQGAN
    monkeypatch.setattr(up, "SR_ABOVE", 32)
    monkeypatch.setattr(up, "default_sr_path", lambda: tiny_sr)
    torch.manual_seed(0)
    tok = VQGAN(load_config(TokenizerConfig, None, {"ch": 8, "ch_mult": [1, 2, 2, 2], "num_res_blocks": 1,
                                                    "z_channels": 16, "codebook_size": 64, "codebook_dim": 8,
                                                    "image_size": 32, "crop": 32})).eval().requires_grad_(False)
    settings = BenchSettings(sizes=(32, 64), steps=(1,), batches=(1,), repeats=2, warmup=1, quality=False)
    rows = run_bench([BenchEntry("rand", _RandomPrior(), True, "-")], tok, "cpu", settings, log=lambda *_: None)["speed"]
    small, big = rows
    assert small["size"] == 32 and "sr_p50_s" not in small
    assert big["size"] == 64 and big["grid"] == "4x4" and big["status"] == "ok"   # generated at 32², upscaled
    assert big["sr_p50_s"] > 0 and "2x SR" in big["note"]
    assert big["total_p50_s"] == pytest.approx(big["sample_p50_s"] + big["decode_p50_s"] + big["sr_p50_s"])


def test_shipped_sr_model_loads_upscales_and_records_its_training():
    from nar.core.checkpoint import read_meta
    from nar.pipelines.upscale import default_sr_path, load_sr, upscale
    meta = read_meta(default_sr_path())
    assert meta["kind"] == "sr" and meta["weights_dtype"] == "float16" and meta["params"] > 0
    assert meta["training"]["steps"] == meta["step"] > 0 and meta["training"]["hardware"]
    assert default_sr_path().stat().st_size < 5 * 2 ** 20
    model = load_sr()
    out = upscale(Image.new("RGB", (40, 24), (120, 80, 40)), model)
    assert out.size == (80, 48)
    # a flat image stays flat (the net adds no texture where there is none)
    arr = np.asarray(out, np.int16)
    assert np.abs(arr - np.array([120, 80, 40])).max() <= 3


def test_fill_passes():
    from nar.pipelines.upscale import fill_passes
    assert fill_passes(1024, 512) == 1 and fill_passes(2048, 512) == 2 and fill_passes(2048, 1024) == 1
    assert fill_passes(1023, 512) == 0 and fill_passes(1500, 1024) == 0   # under twice native: own size
    assert fill_passes(45, 32) == 0 and fill_passes(4096, None) == 0


def test_eval_on_decoded_inputs_scores_the_round_trip(tiny_sr, tiny_models):
    from nar.pipelines.sr_eval import evaluate_sr
    clean = evaluate_sr(tiny_sr, n=2, size=32, log=lambda *a: None)
    decoded = evaluate_sr(tiny_sr, n=2, size=32, low_res="decoded", tokenizer=tiny_models["tokenizer"],
                          log=lambda *a: None)
    assert clean["tokenizer"] is None and decoded["tokenizer"].endswith("model.safetensors")
    assert decoded["gradient_energy_true"] == clean["gradient_energy_true"]      # same scenes, same targets
    assert decoded["psnr_bicubic"] < clean["psnr_bicubic"]                       # the round trip lost detail
    with pytest.raises(NarError, match="tokenizer checkpoint not found"):
        evaluate_sr(tiny_sr, n=1, size=32, low_res="decoded", tokenizer="/nonexistent.safetensors")
