"""Sharpness / blockiness measures on images whose answer is known."""
import pytest
import torch
import torch.nn.functional as F

from nar.eval.sharpness import (block_ratio, gradient_energy, high_freq_share, luminance,
                                relative_to, sharpness_report)


def textured(size=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, 27, 27, generator=g)  # not a divisor of any pitch tested * 2 - 1
    smooth = F.interpolate(base, size=(size, size), mode="bicubic", align_corners=False)
    noise = (torch.rand(1, 3, size, size, generator=g) * 2 - 1) * 0.3
    return (smooth + noise).clamp(-1, 1)


def blur(x, k=5):
    kernel = torch.ones(3, 1, k, k) / (k * k)
    return F.conv2d(F.pad(x, (k // 2,) * 4, mode="reflect"), kernel, groups=3)


def test_luminance_range_and_shape():
    x = torch.ones(2, 3, 8, 8)
    luma = luminance(x)
    assert luma.shape == (2, 8, 8)
    assert torch.allclose(luma, torch.full_like(luma, 255.0))
    with pytest.raises(ValueError):
        luminance(torch.zeros(3, 8, 8))


def test_blur_lowers_gradient_energy_and_high_freq_share():
    x = textured()
    y = blur(x)
    assert gradient_energy(y) < 0.6 * gradient_energy(x)
    assert high_freq_share(y) < 0.5 * high_freq_share(x)


def test_flat_image_has_no_gradient_and_no_spectrum():
    x = torch.zeros(1, 3, 32, 32)
    assert gradient_energy(x) == 0.0
    assert high_freq_share(x) == 0.0


def test_gradient_energy_of_a_known_ramp():
    # luminance rises by exactly 1 (0..255 units) per column, flat vertically
    cols = torch.arange(64, dtype=torch.float64)
    gray = (cols / 127.5 - 1).expand(1, 3, 64, 64)
    dx_mean, dy_mean = 1.0, 0.0
    n_dx, n_dy = 64 * 63, 63 * 64
    expected = (dx_mean * n_dx + dy_mean * n_dy) / (n_dx + n_dy)
    assert gradient_energy(gray) == pytest.approx(expected, rel=1e-6)


def test_block_ratio_is_one_for_natural_texture_and_high_for_tiles():
    x = textured(128)
    assert block_ratio(x, 16) == pytest.approx(1.0, abs=0.1)
    # an image built of 16x16 flat squares: every difference sits on a block boundary
    tiles = F.interpolate(torch.rand(1, 3, 8, 8) * 2 - 1, scale_factor=16, mode="nearest")
    assert block_ratio(tiles + 0.01 * textured(128), 16) > 5
    # the same tiles, seen at another pitch, are not 7-px blocks
    assert block_ratio(tiles + 0.01 * textured(128), 7) < 1.5


def test_block_ratio_rejects_bad_blocks():
    with pytest.raises(ValueError):
        block_ratio(torch.zeros(1, 3, 8, 8), 1)
    with pytest.raises(ValueError):
        block_ratio(torch.zeros(1, 3, 8, 8), 64)


def test_report_chunks_agree_with_whole_and_relative_rows():
    x = torch.cat([textured(64, s) for s in range(5)])
    whole = sharpness_report(x, blocks=(16, 8), chunk=100)
    chunked = sharpness_report(x, blocks=(8, 16), chunk=2)
    for key in whole:
        assert chunked[key] == pytest.approx(whole[key], rel=0.05)
    assert set(whole) == {"grad_energy", "hf_share", "block_ratio_8", "block_ratio_16"}
    rel = relative_to(sharpness_report(blur(x)), whole)
    assert 0 < rel["grad_energy_vs_real"] < 0.7
    assert 0 < rel["hf_share_vs_real"] < 0.5
