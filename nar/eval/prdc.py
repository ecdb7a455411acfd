"""Precision / recall (Kynkäänniemi et al. 2019) and density / coverage (Naeem et al. 2020).

Each feature set is taken as an estimate of its distribution's support: the union of balls
around its points, each ball's radius the distance to that point's k-th nearest neighbour in
the same set (k = 3 by default, as in the paper).

- precision: fraction of fake points inside the real manifold (fidelity);
- recall:    fraction of real points inside the fake manifold (diversity);
- density:   (1 / kM) Σ_fake #{real balls containing it}  (can exceed 1);
- coverage:  fraction of real points whose ball holds at least one fake point.

Distances are Euclidean, computed in float64 in row chunks, so memory stays O(chunk × N).
"""
from __future__ import annotations

import torch

from nar.core.errors import NarError

CHUNK = 1024


def _as_feats(x, name: str) -> torch.Tensor:
    x = torch.as_tensor(x).detach().to("cpu", torch.float64)
    if x.ndim != 2:
        raise NarError(f"{name} must be a 2-d (N, D) array, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise NarError(f"{name} contains NaN or infinite values")
    return x


def _cdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # exact (non-matmul) Euclidean distances: no cancellation for near-identical points
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def knn_radii(feats: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest neighbour in the same set (self excluded)."""
    n = feats.shape[0]
    if n <= k:
        raise NarError(f"need more than k={k} feature vectors for k-NN radii, got {n}")
    radii = torch.empty(n, dtype=torch.float64)
    for i in range(0, n, CHUNK):
        d = _cdist(feats[i:i + CHUNK], feats)
        # the k+1 smallest include the point itself at distance 0
        radii[i:i + CHUNK] = d.topk(k + 1, dim=1, largest=False).values[:, k]
    return radii


def _inside_counts(query: torch.Tensor, centers: torch.Tensor, radii: torch.Tensor):
    """For each query: how many balls (centers, radii) contain it; for each center: whether
    any query lies in its ball."""
    counts = torch.zeros(query.shape[0], dtype=torch.long)
    hit = torch.zeros(centers.shape[0], dtype=torch.bool)
    for i in range(0, query.shape[0], CHUNK):
        inside = _cdist(query[i:i + CHUNK], centers) <= radii[None, :]
        counts[i:i + CHUNK] = inside.sum(dim=1)
        hit |= inside.any(dim=0)
    return counts, hit


def precision_recall(real, fake, k: int = 3) -> dict[str, float]:
    """Improved precision and recall of ``fake`` against ``real`` feature sets (N, D), (M, D)."""
    out = prdc(real, fake, k=k)
    return {"precision": out["precision"], "recall": out["recall"]}


def prdc(real, fake, k: int = 3) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` against ``real`` (k-NN manifolds)."""
    real, fake = _as_feats(real, "real features"), _as_feats(fake, "fake features")
    if real.shape[1] != fake.shape[1]:
        raise NarError(f"feature sets have different dimensions: {real.shape[1]} vs {fake.shape[1]}")
    if k < 1:
        raise NarError(f"k must be >= 1, got {k}")
    real_r = knn_radii(real, k)
    fake_r = knn_radii(fake, k)
    fake_in_real, real_covered = _inside_counts(fake, real, real_r)
    real_in_fake, _ = _inside_counts(real, fake, fake_r)
    return {
        "precision": float((fake_in_real > 0).double().mean()),
        "recall": float((real_in_fake > 0).double().mean()),
        "density": float(fake_in_real.double().sum() / (k * fake.shape[0])),
        "coverage": float(real_covered.double().mean()),
    }
