import pytest
import torch

from nar.nn.rotary import AxialRotary2D


def score(rotary, q, k, q_pos, k_pos):
    """q·k after rotating q at grid position q_pos and k at k_pos (via the offset argument)."""
    rq = rotary.rotate(q, rotary.freqs(1, 1, offset=q_pos))
    rk = rotary.rotate(k, rotary.freqs(1, 1, offset=k_pos))
    return (rq * rk).sum().item()


def test_freqs_shape_and_cache():
    rotary = AxialRotary2D(16)
    f = rotary.freqs(4, 6, "cpu")
    assert f.shape == (24, 16) and f.dtype == torch.float32
    assert rotary.freqs(4, 6, "cpu") is f  # cached per (h, w, device)
    assert not torch.equal(rotary.freqs(6, 4, "cpu"), f)


def test_rotate_keeps_shape_and_norm():
    rotary = AxialRotary2D(16)
    q = torch.randn(2, 3, 4 * 6, 16)  # (B, heads, N, dim_head)
    rq = rotary.rotate(q, rotary.freqs(4, 6))
    assert rq.shape == q.shape
    torch.testing.assert_close(rq.norm(dim=-1), q.norm(dim=-1))  # a rotation
    assert not torch.allclose(rq[:, :, 1:], q[:, :, 1:])  # only (0, 0) is unrotated
    torch.testing.assert_close(rq[:, :, 0], q[:, :, 0])


def test_scores_depend_on_2d_relative_offset_only():
    torch.manual_seed(0)
    rotary = AxialRotary2D(16)
    q, k = torch.randn(1, 16), torch.randn(1, 16)  # one token
    base = score(rotary, q, k, (1, 2), (3, 5))
    # shifting both positions together leaves the score unchanged (relative positions) ...
    assert score(rotary, q, k, (7, 11), (9, 14)) == pytest.approx(base, abs=1e-4)
    # ... while changing the row offset or the column offset alone changes it (2D, not 1D)
    assert abs(score(rotary, q, k, (1, 2), (4, 5)) - base) > 1e-3
    assert abs(score(rotary, q, k, (1, 2), (3, 6)) - base) > 1e-3


def test_integer_positions_extrapolate_to_larger_grids():
    rotary = AxialRotary2D(16)
    small = rotary.freqs(8, 12).reshape(8, 12, 16)
    large = rotary.freqs(16, 24).reshape(16, 24, 16)
    # a token's angles depend on its (row, col) only, not on the grid size
    torch.testing.assert_close(large[:8, :12], small)


def test_dim_head_must_split_over_two_axes():
    with pytest.raises(ValueError, match="divisible by 4"):
        AxialRotary2D(18)


def test_frequencies_stay_fp32_in_a_low_precision_model():
    rotary = AxialRotary2D(16)
    exact = rotary.freqs(64, 64).clone()
    rotary.to(torch.bfloat16)
    angles = rotary.freqs(64, 64)
    assert angles.dtype == torch.float32
    torch.testing.assert_close(angles, exact, rtol=0, atol=0)


def test_precomputed_tables_rotate_like_the_library():
    from nar.nn.rotary import AxialRotary2D, apply_rotary
    rot = AxialRotary2D(16)
    t = torch.randn(2, 3, 12, 16)
    tables = rot.tables(3, 4)
    assert rot.tables(3, 4) is tables  # computed once per grid
    torch.testing.assert_close(apply_rotary(t, tables), apply_rotary(t, rot.freqs(3, 4)), atol=1e-6, rtol=1e-5)
