import numpy as np
import pytest
import torch

from nar.core.errors import NarError
from nar.eval.frechet import feature_stats, frechet_distance, frechet_from_features


def rotation(d: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_diagonal_closed_form(method):
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    got = frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2), method=method)
    assert got == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_shared_eigenbasis(method):
    # Σ1 = R D1 Rᵀ, Σ2 = R D2 Rᵀ commute: the trace term is Σ sqrt(d1 d2)
    d = 6
    r = rotation(d, 0)
    d1, d2 = np.linspace(0.5, 3.0, d), np.linspace(2.0, 0.1, d)
    s1, s2 = r @ np.diag(d1) @ r.T, r @ np.diag(d2) @ r.T
    mu1, mu2 = np.zeros(d), np.full(d, 0.5)
    expected = d * 0.25 + np.sum(d1 + d2 - 2 * np.sqrt(d1 * d2))
    assert frechet_distance(mu1, s1, mu2, s2, method=method) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_non_commuting_2x2_closed_form(method):
    # for 2x2 PSD matrices, Tr((Σ1Σ2)^½) = sqrt(Tr(Σ1Σ2) + 2 sqrt(det Σ1 det Σ2))
    s1 = np.array([[2.0, 0.8], [0.8, 1.0]])
    s2 = np.array([[0.5, -0.3], [-0.3, 1.5]])
    assert not np.allclose(s1 @ s2, s2 @ s1)
    tr_sqrt = np.sqrt(np.trace(s1 @ s2) + 2 * np.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
    mu1, mu2 = np.array([1.0, 2.0]), np.array([0.0, -1.0])
    expected = 1 + 9 + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert frechet_distance(mu1, s1, mu2, s2, method=method) == pytest.approx(expected, rel=1e-10)


def test_methods_agree_on_random_covariances():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((200, 16)), rng.standard_normal((200, 16)) @ rng.standard_normal((16, 16)) * 0.3
    m1, s1 = feature_stats(a)
    m2, s2 = feature_stats(b)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(frechet_distance(m1, s1, m2, s2, method="sqrtm"), rel=1e-6)


def test_identical_sets_are_zero_even_when_singular():
    feats = torch.randn(20, 64)  # fewer samples than dimensions: rank-deficient covariance
    assert frechet_from_features(feats, feats) == pytest.approx(0.0, abs=1e-8)
    assert frechet_from_features(feats, feats, method="sqrtm") == pytest.approx(0.0, abs=1e-4)


def test_translation_adds_squared_norm():
    rng = np.random.default_rng(2)
    feats = rng.standard_normal((300, 8)) @ rng.standard_normal((8, 8))
    v = rng.standard_normal(8)
    assert frechet_from_features(feats, feats + v) == pytest.approx(float(v @ v), rel=1e-8)


def test_feature_stats_and_errors():
    x = np.random.default_rng(3).standard_normal((50, 4))
    mu, sigma = feature_stats(x)
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False))
    with pytest.raises(NarError):
        feature_stats(x[:1])
    with pytest.raises(NarError):
        frechet_from_features(x, x[:, :3])
    with pytest.raises(NarError):
        frechet_from_features(np.full((5, 2), np.nan), x[:, :2])
    with pytest.raises(NarError):
        frechet_distance(mu, sigma, mu, sigma, method="magic")
