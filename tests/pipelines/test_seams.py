"""Inpainting seams: the regenerated region meets the kept pixels without a frame."""
import numpy as np
import torch

from nar.pipelines.seams import border_ratio, harmonize_seam, push_pull_fill


def scene(h=96, w=96, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([80 + 0.8 * yy, 120 + 0.5 * xx, 160 - 0.4 * yy], -1)
    return np.clip(base + rng.normal(0, 3, (h, w, 3)), 0, 255).astype(np.uint8)


def box_mask(h=96, w=96, y0=24, y1=72, x0=30, x1=80):
    mask = np.zeros((h, w), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_push_pull_fills_holes_and_keeps_known_values():
    values = torch.zeros(1, 32, 32)
    weights = torch.zeros(32, 32)
    values[0, :, :4], weights[:, :4] = 10.0, 1.0       # a known strip of 10s on the left
    filled = push_pull_fill(values, weights)
    assert torch.allclose(filled[0, :, :4], torch.full((32, 4), 10.0))
    assert torch.allclose(filled, torch.full_like(filled, 10.0), atol=1e-4)   # constant field: exact


def test_a_colour_shifted_region_loses_its_frame():
    original = scene()
    mask = box_mask()
    generated = np.clip(original.astype(np.int32) + 25, 0, 255).astype(np.uint8)   # decoder's colour shift
    pasted = np.where(mask[..., None], generated, original)
    fixed = np.where(mask[..., None], np.round(harmonize_seam(original, generated, mask)), original).astype(np.uint8)
    assert border_ratio(pasted, mask) > 3
    assert border_ratio(fixed, mask) < 1.3
    assert np.array_equal(fixed[~mask], original[~mask])              # kept pixels untouched
    assert np.abs(fixed[mask].astype(int) - original[mask].astype(int)).mean() < 3


def test_border_ratio_is_about_one_without_a_seam_and_edge_cases():
    original = scene(seed=1)
    assert abs(border_ratio(original, box_mask()) - 1.0) < 0.2
    assert border_ratio(original, np.zeros((96, 96), bool)) == 1.0
    full = np.ones((96, 96), bool)
    assert np.array_equal(harmonize_seam(original, original, full), original.astype(np.float32))


def test_fill_from_kept_replaces_the_masked_pixels_only():
    from nar.pipelines.seams import fill_from_kept
    original = scene(seed=2)
    mask = box_mask()
    filled = fill_from_kept(original, mask)
    assert np.array_equal(filled[~mask], original[~mask])
    other = original.copy()
    other[mask] = 255 - other[mask]                    # anything under the mask
    assert np.array_equal(fill_from_kept(other, mask), filled)


def test_extend_from_kept_carries_the_border_across_and_ignores_the_masked_pixels():
    from nar.pipelines.seams import extend_from_kept
    original = scene(seed=3)
    mask = box_mask()
    ext = extend_from_kept(original, mask, rings=3)
    assert np.array_equal(ext[~mask], original[~mask].astype(np.float32))
    assert np.array_equal(ext[40, 30:33], np.repeat(original[40, 29:30], 3, axis=0).astype(np.float32))
    other = original.copy()
    other[mask] = 0
    assert np.array_equal(extend_from_kept(other, mask, 3)[40, 30:33], ext[40, 30:33])
