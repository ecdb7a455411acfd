import json
import math

import pytest
import torch
from safetensors.torch import load_file

from nar.train.loop import MODEL_FILE, STATE_FILE, train
from nar.train.tokenizer_task import TokenizerTask, TrainImages, held_out_seed, train_seed

from tok_helpers import tiny_config


def test_batches_are_deterministic_per_generator():
    images = TrainImages(tiny_config())
    a = images.batch(3, torch.Generator().manual_seed(7))
    b = images.batch(3, torch.Generator().manual_seed(7))
    assert a.shape == (3, 3, 32, 32) and torch.equal(a, b)
    assert -1 <= a.min() and a.max() <= 1


def test_crop_candidates_pick_busier_crops():
    from nar.core.images import gradient_activity
    plain = TrainImages(tiny_config()).batch(6, torch.Generator().manual_seed(7))
    picky = TrainImages(tiny_config(crop_candidates=6)).batch(6, torch.Generator().manual_seed(7))
    assert picky.shape == plain.shape
    activity = lambda batch: sum(gradient_activity(x) for x in batch)
    assert activity(picky) > activity(plain)


def test_training_and_held_out_seeds_are_disjoint():
    assert train_seed(1023, 2 ** 30 - 1) < held_out_seed(0, 0)


def test_loss_goes_down_on_procedural_images(trained_tiny):
    # the shared fixture: 40 steps of the tiny config, discriminator on from step 30
    rows = [json.loads(line) for line in (trained_tiny.parent / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 40
    # per-step losses are on different random batches: compare averages over ten steps
    first = sum(r["rec"] for r in rows[:10]) / 10
    last = sum(r["rec"] for r in rows[20:30]) / 10
    assert last < 0.9 * first, (first, last)
    assert min(r["usage"] for r in rows) > 0.2     # never collapsed onto a few codes
    assert all(math.isfinite(r["adaptive_weight"]) for r in rows[30:])


@pytest.mark.parametrize("lecam_weight", [0.0, 0.1])
def test_resume_equals_uninterrupted_training(tmp_path, lecam_weight):
    def run(out, steps):
        cfg = tiny_config(disc_start=2, lecam_weight=lecam_weight)   # both optimizers and k-means init inside the window
        cfg.train.steps, cfg.train.ckpt_every, cfg.train.batch_size = steps, 3, 2
        train(TokenizerTask(cfg), cfg.train, out, progress=False)

    run(tmp_path / "straight", 6)
    run(tmp_path / "resumed", 3)
    run(tmp_path / "resumed", 6)          # picks up state.safetensors at step 3
    for name in (MODEL_FILE, STATE_FILE):
        a, b = load_file(tmp_path / "straight" / name), load_file(tmp_path / "resumed" / name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}: {key} differs"
    state = load_file(tmp_path / "straight" / STATE_FILE)
    assert any(k.startswith("extra.discriminator.") for k in state)
    # the LeCam anchors are saved (and restored) only when the regulariser is on
    assert ("extra.lecam.updates" in state) == (lecam_weight > 0)
    if lecam_weight:
        assert int(state["extra.lecam.updates"]) == 4      # discriminator steps 2..5


def test_a_run_saved_before_a_config_field_existed_resumes(tmp_path):
    """A field added to the config since a run was saved takes its default on resume; a run
    asked to resume with another value of it is still refused."""
    from nar.core.checkpoint import load_checkpoint, save_checkpoint
    from nar.core.errors import NarError

    def run(steps, **overrides):
        cfg = tiny_config(**overrides)
        cfg.train.steps, cfg.train.ckpt_every, cfg.train.batch_size = steps, 2, 2
        return train(TokenizerTask(cfg), cfg.train, tmp_path / "run", progress=False)

    run(2)
    tensors, meta = load_checkpoint(tmp_path / "run" / STATE_FILE)
    del meta["model_meta"]["config"]["lecam_weight"]          # as saved before the field existed
    save_checkpoint(tmp_path / "run" / STATE_FILE, tensors, meta)
    with pytest.raises(NarError, match="different config"):
        run(3, lecam_weight=0.1)
    run(3)
    assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 3


def test_checkpoint_meta_and_snapshot(tmp_path):
    cfg = tiny_config()
    task = TokenizerTask(cfg)
    meta = task.checkpoint_meta()
    assert meta["kind"] == "tokenizer" and meta["name"] == "vqgan"
    assert meta["factor"] == 8 and meta["codebook_size"] == 64 and "train" not in meta["config"]
    assert set(task.optimizers()) == {"gen", "disc"}
    task.model.eval()
    task.snapshot(task.model, 5, tmp_path)
    assert (tmp_path / "step_0000005.png").stat().st_size > 0


def test_a_collapsed_codebook_is_reported(capsys, monkeypatch):
    from nar.tokenizer import losses
    monkeypatch.setattr(losses, "_warned", set())
    task = TokenizerTask(tiny_config())
    for step in range(150):
        task._watch_codebook(step, perplexity=1.0)
    err = capsys.readouterr().err
    assert err.count("codebook collapse") == 1


def test_decoder_finetune_keeps_tokens_and_learns_the_decoder(trained_tiny, tmp_path):
    """train_parts = 'decoder': encoder, quant_conv and codebook stay bit-identical (so priors
    trained on the old tokens stay valid); the decoder moves; the edge term is logged."""
    from nar.tokenizer.load import load_tokenizer
    cfg = tiny_config(train_parts="decoder", init_from=str(trained_tiny), gradient_weight=1.0, disc_start=2)
    cfg.train.steps, cfg.train.ckpt_every, cfg.train.batch_size = 4, 4, 2
    task = TokenizerTask(cfg)
    assert all(not p.requires_grad for p in task.model.encoder.parameters())
    out = train(task, cfg.train, tmp_path / "ft", progress=False)
    before, after = load_file(trained_tiny), load_file(out / MODEL_FILE)
    for key in before:
        if key.startswith(("encoder.", "quant_conv.", "quantizer.")):
            assert torch.equal(before[key], after[key]), key
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all("grad" in r for r in rows) and all(r["quant"] == 0 for r in rows)
    images = TrainImages(cfg).fixed_examples(2)
    old, new = load_tokenizer(trained_tiny), load_tokenizer(out / MODEL_FILE)
    assert torch.equal(old.encode(images), new.encode(images))


def test_decoder_finetune_needs_a_tokenizer_to_start_from():
    from nar.core.errors import NarError
    with pytest.raises(NarError, match="init_from"):
        tiny_config(train_parts="decoder").validate()
    with pytest.raises(NarError, match="train_parts"):
        tiny_config(train_parts="encoder").validate()


def test_decoder_finetune_keeps_the_parent_tokens_hash(trained_tiny, tmp_path):
    """Priors and token caches record the tokenizer hash; a decoder fine-tune makes the same
    tokens, so it answers with its parent's hash and old priors load with it."""
    from nar.tokenizer.load import load_tokenizer, stamp_hash, tokenizer_hash
    cfg = tiny_config(train_parts="decoder", init_from=str(trained_tiny))
    cfg.train.steps, cfg.train.ckpt_every, cfg.train.batch_size = 2, 2, 2
    out = train(TokenizerTask(cfg), cfg.train, tmp_path / "ft", progress=False) / MODEL_FILE
    # straight from training (no stamped hash yet), as `nar tokenizer eval|encode --ckpt RUN/...` reads it
    assert load_tokenizer(out).hash == load_tokenizer(out, decode_only=True).hash == tokenizer_hash(trained_tiny)
    stamp_hash(out)
    assert tokenizer_hash(out) == tokenizer_hash(trained_tiny)
    assert load_tokenizer(out, decode_only=True).hash == tokenizer_hash(trained_tiny)


def test_larger_codebook_warm_start_keeps_the_net_and_kmeans_inits_new_codes(trained_tiny, tmp_path):
    """init_codebook = 'kmeans': encoder and decoder start as init_from's, the codebook has the
    new size and is k-means initialised on those encoder latents before the first step."""
    from nar.tokenizer.load import load_tokenizer
    parent = load_tokenizer(trained_tiny)
    size = 2 * parent.cfg.codebook_size
    cfg = tiny_config(init_from=str(trained_tiny), init_codebook="kmeans", codebook_size=size)
    task = TokenizerTask(cfg)
    before = load_file(trained_tiny)
    own = task.model.state_dict()
    for key in before:
        if not key.startswith("quantizer."):
            assert torch.equal(before[key].to(own[key].dtype), own[key]), key
    assert not task.model.quantizer.initialised
    cfg.train.steps, cfg.train.ckpt_every, cfg.train.batch_size = 2, 2, 2
    out = train(task, cfg.train, tmp_path / "big", progress=False) / MODEL_FILE
    grown = load_tokenizer(out)
    assert grown.cfg.codebook_size == size and grown.quantizer.codebook().shape[0] == size
    images = TrainImages(cfg).fixed_examples(2)
    assert int(grown.encode(images).max()) < size


def test_kmeans_codebook_init_needs_a_parent_and_all_parts():
    from nar.core.errors import NarError
    with pytest.raises(NarError, match="init_from"):
        tiny_config(init_codebook="kmeans").validate()
    with pytest.raises(NarError, match="init_codebook"):
        tiny_config(init_codebook="kmeans", init_from="x.safetensors", train_parts="decoder").validate()
    with pytest.raises(NarError, match="init_codebook"):
        tiny_config(init_codebook="random").validate()


def test_a_grown_decoder_starts_as_its_parent_and_then_learns(trained_tiny, tmp_path):
    """decoder_extra_blocks: new res blocks start as the identity, so a run with init_from decodes
    exactly what its parent decoded at step 0; the new blocks then train."""
    from nar.tokenizer.load import load_tokenizer
    cfg = tiny_config(init_from=str(trained_tiny), decoder_extra_blocks=[1, 1])
    task = TokenizerTask(cfg)
    parent = load_tokenizer(trained_tiny)
    images = TrainImages(cfg).fixed_examples(2)
    task.model.eval()
    with torch.no_grad():
        tokens = parent.encode(images)
        assert torch.equal(task.model.encode(images), tokens)
        assert torch.allclose(task.model.decode_tokens(tokens), parent.decode_tokens(tokens), atol=1e-6)
    extra = [k for k in task.model.state_dict() if ".extra." in k]
    assert extra and all(k.startswith(("decoder.up.0.extra.", "decoder.up.1.extra.")) for k in extra)
    cfg.train.steps, cfg.train.ckpt_every, cfg.train.batch_size = 2, 2, 2
    out = train(task, cfg.train, tmp_path / "grown", progress=False) / MODEL_FILE
    after = load_file(out)
    assert any(after[k].abs().sum() > 0 for k in extra if k.endswith("conv2.weight"))
    # a second stage from the grown decoder starts from its trained extra blocks, not the identity
    second = TokenizerTask(tiny_config(init_from=str(out), decoder_extra_blocks=[1, 1])).model.state_dict()
    assert all(torch.equal(second[k], after[k].to(second[k].dtype)) for k in extra)
    from nar.core.errors import NarError
    with pytest.raises(NarError, match="decoder_extra_blocks"):
        tiny_config(decoder_extra_blocks=[1] * 9).validate()


def test_an_upscaling_decoder_draws_half_size_tokens_at_full_size(trained_tiny, tmp_path):
    """decoder_upscale = 2: the parent's tokens (of an image_size / 2 render) decode at image_size;
    at step 0 the grown decoder draws about the parent's decode pixel-doubled; training pairs match
    a token crop with the full-size crop of the same scene; encoder and codebook stay the parent's."""
    import torch.nn.functional as F
    from nar.core.errors import NarError
    from nar.tokenizer.load import load_tokenizer
    cfg = tiny_config(init_from=str(trained_tiny), train_parts="decoder", decoder_upscale=2, image_size=64,
                      n_train=0, seam_weight=0.2, disc_start=1)
    task = TokenizerTask(cfg)
    parent = load_tokenizer(trained_tiny)
    assert task.model.decode_factor == 2 * parent.factor
    half = TrainImages(tiny_config()).fixed_examples(2)                     # (2, 3, 32, 32)
    task.model.eval()
    with torch.no_grad():
        tokens = parent.encode(half)
        grown, doubled = task.model.decode_tokens(tokens), F.interpolate(parent.decode_tokens(tokens), scale_factor=2)
    assert grown.shape == (2, 3, 64, 64)
    assert (grown - doubled).abs().mean() < 0.25 * doubled.abs().mean()
    token_crops, targets = task.images.pair_batch(3, torch.Generator().manual_seed(0), parent.encode, parent.factor)
    assert token_crops.shape == (3, 2, 2) and targets.shape == (3, 3, 32, 32)
    cfg.train.steps, cfg.train.ckpt_every, cfg.train.batch_size = 2, 2, 2
    out = train(task, cfg.train, tmp_path / "up2", progress=False) / MODEL_FILE
    before, after = load_file(trained_tiny), load_file(out)
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith(("encoder.", "quantizer.")))
    assert any(k.startswith("decoder.upscale.") for k in after)
    rows = [json.loads(line) for line in (out.parent / "metrics.jsonl").read_text().splitlines()]
    assert all("seam" in r and "d_loss" in r for r in rows[1:])
    assert load_tokenizer(out).decode_tokens(tokens).shape == (2, 3, 64, 64)
    with pytest.raises(NarError, match="decoder_upscale"):
        tiny_config(decoder_upscale=2).validate()
    with pytest.raises(NarError, match="decoder_upscale"):
        tiny_config(decoder_upscale=4, train_parts="decoder", init_from="x.safetensors").validate()
