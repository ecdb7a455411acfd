"""Fréchet distance between two Gaussians fitted to feature sets.

    d² = ||μ1 - μ2||² + Tr(Σ1 + Σ2 - 2 (Σ1^½ Σ2 Σ1^½)^½)

With Inception pool3 features this is FID; with any other feature space it is a Fréchet
distance *in that space* and must be labelled as such (nar's own is "FD (nar features)").

Everything is computed in float64. The default method never forms a non-symmetric matrix:
Σ1^½ comes from an eigen-decomposition of the symmetric Σ1 (negative round-off eigenvalues
clipped to 0), and Tr((Σ1^½ Σ2 Σ1^½)^½) is the sum of square roots of the eigenvalues of a
symmetric PSD matrix, so the result is real by construction and singular covariances (fewer
samples than dimensions) are fine. ``method="sqrtm"`` is the classic pytorch-fid /
TTUR recipe (scipy.linalg.sqrtm of Σ1Σ2, ε on the diagonal when it is singular, tiny
imaginary parts dropped), kept for cross-checking.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from nar.core.errors import NarError


def _as_f64(a, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().to("cpu", torch.float64).numpy()
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise NarError(f"{name} contains NaN or infinite values")
    return a


def feature_stats(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64."""
    x = _as_f64(feats, "features")
    if x.ndim != 2:
        raise NarError(f"features must be a 2-d (N, D) array, got shape {x.shape}")
    if x.shape[0] < 2:
        raise NarError(f"need at least 2 feature vectors for a covariance, got {x.shape[0]}")
    mu = x.mean(axis=0)
    sigma = np.cov(x, rowvar=False)
    return mu, np.atleast_2d(sigma)


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (eigen-based)."""
    a = 0.5 * (a + a.T)
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(_clip_eigs(w))) @ v.T


def _clip_eigs(w: np.ndarray) -> np.ndarray:
    """Zero the eigenvalues that are round-off (negative, or tiny next to the largest)."""
    tol = max(float(np.max(np.abs(w))), 0.0) * w.shape[0] * np.finfo(np.float64).eps
    return np.where(w > tol, w, 0.0)


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((Σ1^½ Σ2 Σ1^½)^½) = Tr((Σ1 Σ2)^½), via symmetric eigenvalues only."""
    s1h = _psd_sqrt(sigma1)
    m = s1h @ sigma2 @ s1h
    m = 0.5 * (m + m.T)
    w = np.linalg.eigvalsh(m)
    return float(np.sqrt(_clip_eigs(w)).sum())


def _trace_sqrt_product_sqrtm(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> float:
    from scipy import linalg

    def sqrtm(a):
        out = linalg.sqrtm(a)
        return out[0] if isinstance(out, tuple) else out  # older scipy returned (sqrt, err)

    covmean = sqrtm(sigma1 @ sigma2)
    if not np.all(np.isfinite(covmean)):
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.max(np.abs(covmean.imag))
        if imag > 1e-3 * max(1.0, np.max(np.abs(covmean.real))):
            warnings.warn(f"sqrtm: large imaginary component {imag:.3g} dropped", stacklevel=3)
        covmean = covmean.real
    return float(np.trace(covmean))


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6, method: str = "eigh") -> float:
    """Fréchet (2-Wasserstein²) distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``method``: "eigh" (default, symmetric eigen-decompositions, always real) or "sqrtm"
    (scipy.linalg.sqrtm of Σ1Σ2, ε·I added to both when the product is singular).
    """
    mu1, mu2 = np.atleast_1d(_as_f64(mu1, "mu1")), np.atleast_1d(_as_f64(mu2, "mu2"))
    sigma1, sigma2 = np.atleast_2d(_as_f64(sigma1, "sigma1")), np.atleast_2d(_as_f64(sigma2, "sigma2"))
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise NarError(f"shape mismatch: mu1 {mu1.shape}, mu2 {mu2.shape}, "
                       f"sigma1 {sigma1.shape}, sigma2 {sigma2.shape}")
    diff = mu1 - mu2
    if method == "eigh":
        tr_covmean = _trace_sqrt_product(sigma1, sigma2)
    elif method == "sqrtm":
        tr_covmean = _trace_sqrt_product_sqrtm(sigma1, sigma2, eps)
    else:
        raise NarError(f"unknown Fréchet method {method!r}; use 'eigh' or 'sqrtm'")
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)
    # the true value is >= 0; round-off can leave a tiny negative one for identical inputs
    return max(value, 0.0)


def frechet_from_features(feats_a, feats_b, eps: float = 1e-6, method: str = "eigh") -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D) and (M, D)."""
    mu1, s1 = feature_stats(feats_a)
    mu2, s2 = feature_stats(feats_b)
    if mu1.shape != mu2.shape:
        raise NarError(f"feature sets have different dimensions: {mu1.shape[0]} vs {mu2.shape[0]}")
    return frechet_distance(mu1, s1, mu2, s2, eps=eps, method=method)
