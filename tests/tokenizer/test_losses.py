import pytest
import torch

from nar.core.errors import NarError
from nar.tokenizer import losses
from nar.tokenizer.losses import (LeCamEMA, NLayerDiscriminator, VQLoss, adaptive_weight, build_lpips,
                                  hinge_d_loss, lecam_loss, psnr, ssim)

from tok_helpers import tiny_config


@pytest.fixture
def no_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(losses, "_warned", set())


def test_missing_vgg_weights_warn_once_and_zero_the_perceptual_weight(no_hub, capsys):
    loss = VQLoss(tiny_config(perceptual_weight=1.0))
    VQLoss(tiny_config(perceptual_weight=1.0))
    assert loss.lpips is None and loss.perceptual_weight == 0.0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "LPIPS is off" in err


def test_a_given_lpips_path_must_exist(tmp_path):
    with pytest.raises(NarError, match="not found"):
        build_lpips(tmp_path / "missing.pth")


def test_adaptive_weight_is_finite_and_clamped():
    layer = torch.nn.Conv2d(3, 3, 3, padding=1)
    x = torch.randn(2, 3, 8, 8)
    out = layer(x)
    w = adaptive_weight(out.abs().mean(), -out.mean(), layer.weight)
    assert torch.isfinite(w) and 0 <= w <= losses.ADAPTIVE_WEIGHT_MAX
    # a GAN loss that does not depend on the layer: zero gradient -> clamped, still finite
    w = adaptive_weight(out.abs().sum(), (out * 0).sum(), layer.weight)
    assert torch.isfinite(w) and w == losses.ADAPTIVE_WEIGHT_MAX


def test_generator_loss_with_discriminator_is_finite():
    cfg = tiny_config(disc_start=0)
    loss_fn = VQLoss(cfg)
    layer = torch.nn.Conv2d(3, 3, 3, padding=1)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    recon = layer(x)
    loss, metrics = loss_fn.generator_loss(x, recon, torch.tensor(0.1), step=0, last_layer=layer.weight)
    assert torch.isfinite(loss) and {"rec", "quant", "gan", "adaptive_weight", "loss"} <= set(metrics)
    d_loss, d_metrics = loss_fn.discriminator_loss(x, recon)
    assert torch.isfinite(d_loss) and d_metrics["d_loss"] >= 0


def test_hinge_and_discriminator_shapes():
    assert float(hinge_d_loss(torch.full((4,), 2.0), torch.full((4,), -2.0))) == 0.0
    assert float(hinge_d_loss(torch.zeros(4), torch.zeros(4))) == 1.0
    assert NLayerDiscriminator(3, 8)(torch.zeros(2, 3, 64, 64)).shape == (2, 1, 6, 6)


def test_lecam_anchors_are_debiased_running_means():
    ema = LeCamEMA(decay=0.9)
    ema.update(torch.full((4,), 2.0), torch.full((4,), -1.0))
    real, fake = ema.anchors()
    assert torch.allclose(real, torch.tensor(2.0)) and torch.allclose(fake, torch.tensor(-1.0))
    ema.update(torch.full((4,), 4.0), torch.full((4,), -3.0))
    real, fake = ema.anchors()   # (0.9 * 0.1 * 2 + 0.1 * 4) / (1 - 0.81)
    assert torch.allclose(real, torch.tensor((0.18 + 0.4) / 0.19))


def test_lecam_pays_only_for_logits_driven_apart():
    ema = LeCamEMA()
    ema.update(torch.tensor([0.5]), torch.tensor([-0.5]))           # anchors: real 0.5, fake -0.5
    assert float(lecam_loss(torch.tensor([-1.0]), torch.tensor([1.0]), ema)) == 0.0
    # real logit 1.5 is 2 above the fake anchor, fake logit -1.5 is 2 below the real anchor
    assert float(lecam_loss(torch.tensor([1.5]), torch.tensor([-1.5]), ema)) == pytest.approx(8.0)


def test_lecam_joins_the_discriminator_loss_only_when_on():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    fake = x.flip(-1)
    off, on = VQLoss(tiny_config()), VQLoss(tiny_config(lecam_weight=0.5))
    assert set(off.trained_modules()) == {"discriminator"} and set(on.trained_modules()) == {"discriminator", "lecam"}
    on.discriminator.load_state_dict(off.discriminator.state_dict())
    d_off, m_off = off.discriminator_loss(x, fake)
    d_on, m_on = on.discriminator_loss(x, fake)
    assert "lecam" not in m_off and int(on.lecam.updates) == 1
    assert float(d_on.detach()) == pytest.approx(float(d_off.detach()) + 0.5 * m_on["lecam"], rel=1e-5)
    with pytest.raises(NarError, match="lecam_weight"):
        tiny_config(lecam_weight=-1.0).validate()


def test_psnr_and_ssim():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert (psnr(x, x) > 90).all()
    torch.testing.assert_close(ssim(x, x), torch.ones(2))
    # an offset of 0.2 in [-1, 1] is 0.1 on the [0, 1] scale: mse 0.01 -> 20 dB
    gray = torch.zeros(2, 3, 32, 32)
    torch.testing.assert_close(psnr(gray + 0.2, gray), torch.full((2,), 20.0))
    assert (ssim(x + 0.3 * torch.randn_like(x), x) < 0.9).all()


def test_torchvision_vgg_keys_map_onto_lpips_slices():
    conv_indices = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]   # VGG16 'features' convolutions
    state = {f"features.{i}.{p}": torch.zeros(1) for i in conv_indices for p in ("weight", "bias")}
    state["classifier.0.weight"] = torch.zeros(1)
    mapped = losses._vgg_features_to_lpips(state)
    # lpips' vgg16 keeps torchvision's indices inside slice1..slice5 (relu1_2 ... relu5_3)
    assert len(mapped) == 26 and "slice1.0.weight" in mapped and "slice3.14.bias" in mapped
    assert "slice5.28.weight" in mapped and not any(k.startswith("classifier") for k in mapped)


class _FakeLpips(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()), requires_grad=False)

    def forward(self, x, y):
        return (x - y).pow(2).mean(dim=(1, 2, 3), keepdim=True)   # (B, 1, 1, 1) like lpips


def test_perceptual_term_is_used_when_a_model_is_given():
    cfg = tiny_config(perceptual_weight=2.0)
    loss_fn = VQLoss(cfg, lpips_model=_FakeLpips())
    x, recon = torch.zeros(2, 3, 16, 16), torch.full((2, 3, 16, 16), 0.5)
    loss, metrics = loss_fn.generator_loss(x, recon, torch.tensor(0.0), step=0, last_layer=None)
    assert metrics["lpips"] == pytest.approx(0.25)
    assert float(loss) == pytest.approx(0.5 + 2.0 * 0.25)


def test_local_spectrum_loss_pays_for_detail_not_for_its_place():
    from nar.tokenizer.losses import local_spectrum_loss
    torch.manual_seed(0)
    texture = torch.randn(1, 3, 64, 64).clamp(-2, 2) * 0.3
    blurred = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(texture, (2, 2, 2, 2), mode="replicate"), 5, 1)
    moved = torch.roll(texture, (3, 5), dims=(2, 3))
    assert float(local_spectrum_loss(texture, texture)) == 0.0
    # an L1 loss prefers the blur; the spectrum loss prefers the same detail out of place
    assert (texture - blurred).abs().mean() < (texture - moved).abs().mean()
    assert local_spectrum_loss(texture, moved) < 0.5 * local_spectrum_loss(texture, blurred)
    out = blurred.clone().requires_grad_(True)
    local_spectrum_loss(texture, out).backward()
    assert torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0
    with pytest.raises(NarError, match="patch"):
        local_spectrum_loss(texture[..., :8, :8], texture[..., :8, :8], patch=16)


def test_seam_loss_costs_the_cell_grid_and_nothing_else():
    from nar.eval.sharpness import block_ratio
    from nar.tokenizer.losses import seam_loss
    torch.manual_seed(0)
    image = torch.nn.functional.avg_pool2d(torch.rand(2, 3, 64, 64) * 2 - 1, 3, 1, 1)
    # a constant offset per 16-px cell: steps only at the cell boundaries
    tiled = image + 0.3 * torch.randn(2, 3, 4, 4).repeat_interleave(16, -1).repeat_interleave(16, -2)
    # the same amount of new texture spread over every pixel
    noisy = image + 0.05 * torch.randn_like(image)
    assert block_ratio(tiled, 16) > 2 * block_ratio(image, 16)
    assert float(seam_loss(image, image, 16)) == 0.0
    assert float(seam_loss(image, tiled, 16)) > 1.0
    assert float(seam_loss(image, noisy, 16)) < 0.05
    # a grid at another pitch is not this tokenizer's cell grid
    assert float(seam_loss(image, tiled, 16)) > 10 * float(seam_loss(image, tiled, 7))
    out = tiled.clone().requires_grad_(True)
    seam_loss(image, out, 16).backward()
    assert torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0
    with pytest.raises(NarError, match="cell"):
        seam_loss(image[..., :8, :8], image[..., :8, :8], 16)


def test_seam_term_joins_the_generator_loss_only_when_on():
    x = torch.zeros(2, 3, 32, 32)
    recon = 0.2 * torch.randn(2, 3, 2, 2).repeat_interleave(16, -1).repeat_interleave(16, -2)
    recon = recon + 0.01 * torch.randn_like(recon)
    off, metrics_off = VQLoss(tiny_config(seam_weight=0.0)).generator_loss(x, recon, torch.tensor(0.0), 0, None)
    on, metrics_on = VQLoss(tiny_config(seam_weight=0.5)).generator_loss(x, recon, torch.tensor(0.0), 0, None)
    assert "seam" not in metrics_off and metrics_on["seam"] > 0
    assert float(on) == pytest.approx(float(off) + 0.5 * metrics_on["seam"], rel=1e-5)
