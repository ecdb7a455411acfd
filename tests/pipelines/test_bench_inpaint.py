"""The border-band windows of benchmarks/bench_inpaint.py straddle the inpainted box's border."""
import torch


def test_border_windows_are_half_kept_half_regenerated(benchmark_script):
    bench = benchmark_script("bench_inpaint")
    size = 64
    box = torch.zeros(2, 3, size, size)
    box[..., size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1.0   # 1 = regenerated pixels
    windows = bench.border_windows(box, size)
    assert windows.shape == (8, 3, size // 4, size // 4)
    # every window is exactly half inside the box, split along the side it sits on
    assert torch.allclose(windows.mean(dim=(1, 2, 3)), torch.full((8,), 0.5))
    top, bottom, left, right = windows[0], windows[2], windows[4], windows[6]
    assert top[:, : size // 8].sum() == 0 and top[:, size // 8:].min() == 1
    assert bottom[:, : size // 8].min() == 1 and bottom[:, size // 8:].sum() == 0
    assert left[..., : size // 8].sum() == 0 and right[..., size // 8:].sum() == 0
