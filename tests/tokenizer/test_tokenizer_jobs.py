import json

import numpy as np
import pytest
import torch
from PIL import Image

from nar.core.checkpoint import load_checkpoint, read_meta, save_checkpoint, tensors_hash
from nar.core.errors import NarError
from nar.data.landscapes import SCENES
from nar.data.tokens import TokenCache
from nar.pipelines.tokenizer_jobs import (encode_to_cache, evaluate_tokenizer, load_tokenizer, reconstruct_image,
                               tokenizer_hash)
from nar.train.tokenizer_task import render_landscape


def _images(n=2, size=32):
    return torch.stack([render_landscape(1000 + i, size)[0] for i in range(n)])


def test_hash_is_stamped_and_agrees(trained_tiny):
    tensors, meta = load_checkpoint(trained_tiny)
    assert meta["hash"] == tensors_hash(tensors) == tokenizer_hash(trained_tiny)
    assert load_tokenizer(trained_tiny).hash == load_tokenizer(trained_tiny, decode_only=True).hash == meta["hash"]


def test_hash_without_stamp_is_computed_the_same_way(trained_tiny, tmp_path):
    tensors, meta = load_checkpoint(trained_tiny)
    meta.pop("hash")
    path = save_checkpoint(tmp_path / "unstamped.safetensors", tensors, meta)
    assert tokenizer_hash(path) == load_tokenizer(path).hash == tensors_hash(tensors)


def test_save_load_gives_identical_outputs(trained_tiny, tmp_path):
    model = load_tokenizer(trained_tiny)
    tensors, meta = load_checkpoint(trained_tiny)
    copy = save_checkpoint(tmp_path / "copy.safetensors", model.state_dict(), meta)
    again = load_tokenizer(copy)
    x = _images()
    tokens = model.encode(x)
    assert torch.equal(tokens, again.encode(x))
    assert torch.equal(model.decode_tokens(tokens), again.decode_tokens(tokens))


def test_decode_only_load_decodes_the_same(trained_tiny):
    full = load_tokenizer(trained_tiny)
    decoder = load_tokenizer(trained_tiny, decode_only=True)
    assert not any(n.startswith(("encoder.", "quant_conv.")) for n in decoder.state_dict())
    tokens = full.encode(_images())
    assert torch.equal(full.decode_tokens(tokens), decoder.decode_tokens(tokens))
    with torch.no_grad():
        torch.testing.assert_close(full.codebook(), decoder.codebook())


def test_re_encoding_a_decoded_image_gives_mostly_the_same_tokens(trained_tiny):
    model = load_tokenizer(trained_tiny)
    tokens = model.encode(_images(4))
    again = model.encode(model.decode_tokens(tokens).clamp(-1, 1))
    # after 40 steps of an 8-channel model this is well above chance (1/64) but far from the
    # agreement of a trained tokenizer (evaluate_tokenizer reports it as "token_agreement")
    assert (again == tokens).float().mean() > 0.1


def test_wrong_checkpoints_are_refused(tmp_path):
    path = save_checkpoint(tmp_path / "prior.safetensors", {"w": torch.zeros(1)}, {"kind": "prior", "name": "ar"})
    with pytest.raises(NarError, match="expected a tokenizer"):
        load_tokenizer(path)
    with pytest.raises(NarError, match="pickle"):
        load_tokenizer(tmp_path / "model.ckpt")
    with pytest.raises(NarError, match="not found"):
        tokenizer_hash(tmp_path / "missing.safetensors")


def test_reconstruct_an_odd_size_keeps_the_size(trained_tiny, tmp_path):
    src = tmp_path / "odd.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8)).save(src)
    before = src.read_bytes()
    info = reconstruct_image(trained_tiny, src, tmp_path / "out" / "odd_rec.png", device="cpu")
    assert Image.open(tmp_path / "out" / "odd_rec.png").size == (70, 45)
    assert info["size"] == [70, 45] and info["grid"] == [6, 9]
    with pytest.raises(NarError, match="overwrite the input"):
        reconstruct_image(trained_tiny, src, tmp_path / "." / "odd.png", device="cpu")
    assert src.read_bytes() == before
    with pytest.raises(NarError, match="cannot read image"):
        reconstruct_image(trained_tiny, tmp_path / "nope.png", tmp_path / "x.png", device="cpu")


def test_encode_to_cache_opens_with_the_right_grid_and_labels(trained_tiny, tmp_path):
    out = encode_to_cache(trained_tiny, tmp_path / "tokens", n=6, size=32, batch_size=4, device="cpu",
                          progress=False)
    cache = TokenCache.open(out, tokenizer_hash=tokenizer_hash(trained_tiny))
    assert len(cache) == 6 and cache.grid == (4, 4) and cache.codebook_size == 64
    assert cache.class_names == list(SCENES)
    assert cache.header["tokenizer_factor"] == 8 and cache.header["image_size"] == [32, 32]
    assert cache.header["tokenizer_path"] == str(trained_tiny.resolve())
    assert ((cache.labels >= 0) & (cache.labels < len(SCENES))).all()
    assert (np.asarray(cache.tokens) < 64).all()
    with pytest.raises(NarError, match="already holds"):
        encode_to_cache(trained_tiny, out, n=2, size=32, device="cpu", progress=False)
    with pytest.raises(NarError, match="multiple of the tokenizer's factor"):
        encode_to_cache(trained_tiny, tmp_path / "t2", n=2, size=30, device="cpu", progress=False)


def test_evaluate_reports_metrics_and_writes_json(trained_tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    result = evaluate_tokenizer(trained_tiny, n=4, size=32, batch_size=3, device="cpu",
                                out_json=tmp_path / "eval.json", progress=False, show=False)
    assert result["n_images"] == 4 and result["grid"] == [4, 4]
    assert 5 < result["psnr"] < 60 and 0 < result["ssim"] <= 1
    assert result["lpips"] is None and "VGG16" in result["lpips_note"]
    assert 0 < result["codebook_usage"] <= 1 and result["perplexity"] >= 1
    assert 0 <= result["token_agreement"] <= 1
    assert json.loads((tmp_path / "eval.json").read_text())["psnr"] == result["psnr"]
    assert read_meta(trained_tiny)["kind"] == "tokenizer"
    # sharpness beside PSNR: a real-image reference row and the reconstructions relative to it
    real, rec = result["sharpness"]["real"], result["sharpness"]["reconstruction"]
    assert set(real) == {"grad_energy", "hf_share", "block_ratio_8"}
    assert rec["grad_energy_vs_real"] == pytest.approx(rec["grad_energy"] / real["grad_energy"])
    assert 0 < rec["grad_energy_vs_real"] < 1.5 and rec["block_ratio_8"] > 0


def test_train_evaluate_and_encode_from_an_image_folder(tmp_path):
    from nar.pipelines.tokenizer_jobs import train_tokenizer
    from tok_helpers import TINY
    rng = np.random.default_rng(0)
    for cls in ("beach", "city"):
        (tmp_path / "images" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (60, 50, 3), dtype=np.uint8)).save(tmp_path / "images" / cls / f"{i}.png")
    (tmp_path / "images" / "broken.png").write_bytes(b"not an image")
    ckpt = train_tokenizer(TINY, {"train.steps": 2, "disc_start": 1, "train.snapshot_every": 2},
                           out=tmp_path / "run", data_dir=tmp_path / "images", progress=False)
    assert read_meta(ckpt)["config"]["data_dir"] == str((tmp_path / "images").resolve())
    assert (tmp_path / "run" / "snapshots" / "step_0000002.png").exists()
    result = evaluate_tokenizer(ckpt, data_dir=tmp_path / "images", n=None, size=32, device="cpu",
                                progress=False, show=False)
    assert result["n_images"] == 6
    cache = TokenCache.open(encode_to_cache(ckpt, tmp_path / "tokens", data_dir=tmp_path / "images", n=None,
                                            size=32, device="cpu", progress=False))
    assert len(cache) == 6 and cache.class_names == ["beach", "city"]
    assert sorted(cache.labels.tolist()) == [0, 0, 0, 1, 1, 1]
    with pytest.raises(NarError, match="not found"):
        train_tokenizer(TINY, out=tmp_path / "run2", data_dir=tmp_path / "nope", progress=False)
