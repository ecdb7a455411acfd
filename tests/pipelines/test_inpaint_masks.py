"""Pixel mask -> latent keep-mask (logical AND per f×f block), boxes, padding and seam blending."""
import numpy as np
import pytest
from PIL import Image

from nar.core.errors import NarError
from nar.pipelines.inpaint import latent_keep_mask, load_mask, pad_to_multiple, parse_box, seam_alpha


def test_latent_and_over_blocks():
    regen = np.zeros((8, 12), dtype=bool)   # f = 4 -> 2x3 tokens
    regen[0, 0] = True                      # one pixel in block (0, 0)
    regen[5:8, 8:12] = True                 # part of block (1, 2)
    regen[0:4, 4:8] = True                  # all of block (0, 1)
    keep = latent_keep_mask(regen, 4)
    assert keep.shape == (2, 3)
    assert keep.tolist() == [[False, False, True], [True, True, False]]


def test_keep_mask_is_true_only_for_fully_kept_blocks_random():
    rng = np.random.default_rng(0)
    regen = rng.random((16, 16)) < 0.02
    keep = latent_keep_mask(regen, 4).numpy()
    for i in range(4):
        for j in range(4):
            assert keep[i, j] == (not regen[4 * i:4 * i + 4, 4 * j:4 * j + 4].any())


def test_box_and_mask_file_errors(tmp_path):
    m = parse_box("2,1,5,3", 8, 4)
    assert m.sum() == 6 and m[1:3, 2:5].all()
    with pytest.raises(NarError, match="outside"):
        parse_box("0,0,9,2", 8, 4)
    with pytest.raises(NarError, match="x0,y0,x1,y1"):
        parse_box("1,2,3", 8, 4)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "m.png")
    with pytest.raises(NarError, match="5x5"):
        load_mask(tmp_path / "m.png", 8, 4)
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(NarError):
        load_mask(tmp_path / "bad.png", 8, 4)


def test_white_means_regenerate(tmp_path):
    arr = np.zeros((4, 8), np.uint8)
    arr[:, 4:] = 255
    Image.fromarray(arr).save(tmp_path / "m.png")
    m = load_mask(tmp_path / "m.png", 8, 4)
    assert m[:, 4:].all() and not m[:, :4].any()


def test_padding_keeps_padded_pixels():
    img = np.zeros((5, 7, 3), np.uint8)
    regen = np.zeros((5, 7), bool)
    p_img, p_regen = pad_to_multiple(img, regen, 4)
    assert p_img.shape == (8, 8, 3) and not p_regen.any()


def test_seam_alpha_never_touches_kept_pixels():
    regen = np.zeros((20, 20), bool)
    regen[5:15, 5:15] = True
    alpha = seam_alpha(regen, 3)
    assert (alpha[~regen] == 1).all()
    assert alpha[10, 10] == 0 and 0 < alpha[5, 10] < 1
    # a linear ramp from the border inward: 3/4, 2/4, 1/4, then 0
    assert np.allclose(alpha[10, 5:9], [0.75, 0.5, 0.25, 0.0])
    assert (seam_alpha(regen, 0)[regen] == 0).all()
