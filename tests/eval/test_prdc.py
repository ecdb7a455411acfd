import pytest
import torch

from nar.core.errors import NarError
from nar.eval.prdc import knn_radii, precision_recall, prdc


def clusters(centers, n_per, std, seed):
    g = torch.Generator().manual_seed(seed)
    centers = torch.as_tensor(centers, dtype=torch.float64)
    pts = [c + std * torch.randn(n_per, centers.shape[1], generator=g, dtype=torch.float64) for c in centers]
    return torch.cat(pts)


MODES = [[0.0, 0.0], [50.0, 0.0], [0.0, 50.0], [50.0, 50.0]]


def test_identical_clouds():
    x = clusters(MODES, 50, 1.0, 0)
    out = prdc(x, x.clone())
    assert out["precision"] == 1.0 and out["recall"] == 1.0 and out["coverage"] == 1.0
    # each real ball holds its centre and its k neighbours: density = (k + 1) / k
    assert out["density"] == pytest.approx(4 / 3)


def test_disjoint_far_apart_clouds():
    real = clusters(MODES, 50, 1.0, 0)
    fake = real + 1000.0
    out = prdc(real, fake)
    assert out == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_half_the_modes():
    real = clusters(MODES, 100, 1.0, 0)
    fake = clusters(MODES[:2], 200, 1.0, 1)  # only two of the four modes, well inside them
    out = precision_recall(real, fake)
    assert out["precision"] > 0.9
    assert out["recall"] == pytest.approx(0.5, abs=0.05)


def test_knn_radii_excludes_self():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]], dtype=torch.float64)
    torch.testing.assert_close(knn_radii(x, 1), torch.tensor([1.0, 1.0, 2.0, 4.0], dtype=torch.float64))
    torch.testing.assert_close(knn_radii(x, 2), torch.tensor([3.0, 2.0, 3.0, 6.0], dtype=torch.float64))


def test_errors():
    x = torch.randn(10, 3)
    with pytest.raises(NarError):
        prdc(x[:3], x)          # not more than k points
    with pytest.raises(NarError):
        prdc(x, torch.randn(10, 4))
    with pytest.raises(NarError):
        prdc(x[0], x)
