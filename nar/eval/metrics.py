"""One entry point for sample quality: `evaluate_images(real, fake)`.

What it reports, and what each number is called:

| key            | label                              | feature space                          |
| -------------- | ---------------------------------- | -------------------------------------- |
| ``fd_nar``     | "FD (nar features)"                | nar's shipped scene classifier (256-d) |
| ``precision``, ``recall``, ``density``, ``coverage`` | k-NN manifolds (k=3) | ``feature`` ("nar" or "inception") |
| ``is_nar``     | "IS (nar scene classifier)"        | scene-class softmax (max = #scenes)    |
| ``fid``        | "FID" / "FID (torchvision Inception)" | Inception pool3, only with weights |
| ``is_inception`` | "IS" / "IS (torchvision Inception)" | Inception logits, only with weights  |

The nar-feature distance is never called FID: it is a Fréchet distance in a small feature
space trained on this project's procedural scenes, useful to compare models with each other
on the same data, not with published numbers. ``fid`` / ``is_inception`` are None when no
Inception weights are present (see `nar.eval.inception`).
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import torch

from nar.core.errors import NarError
from nar.eval.frechet import frechet_from_features
from nar.eval.prdc import prdc

FD_NAR_LABEL = "FD (nar features)"
IS_NAR_LABEL = "IS (nar scene classifier)"

Images = torch.Tensor | np.ndarray | Iterable


def inception_score(logits, splits: int = 10) -> tuple[float, float]:
    """Inception score exp(E_x KL(p(y|x) || p(y))) from classifier logits (N, K).

    The N rows are cut into ``splits`` contiguous parts (fewer when N is small); returns
    (mean, std) over the parts. Works for any classifier: with nar's scene classifier the
    maximum is the number of scenes, with Inception it is 1000 (or 1008).
    """
    x = torch.as_tensor(logits).detach().to("cpu", torch.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise NarError(f"logits must be a 2-d (N, K) array with N >= 1, got shape {tuple(x.shape)}")
    splits = max(1, min(int(splits), x.shape[0]))
    logp = torch.log_softmax(x, dim=1)
    p = logp.exp()
    scores = []
    for part_logp, part_p in zip(logp.tensor_split(splits), p.tensor_split(splits)):
        log_py = torch.logsumexp(part_logp, dim=0) - math.log(part_logp.shape[0])  # log of the mean p(y)
        kl = (part_p * (part_logp - log_py[None])).sum(dim=1).mean()
        scores.append(math.exp(float(kl)))
    scores_t = torch.tensor(scores, dtype=torch.float64)
    std = float(scores_t.std(unbiased=False)) if len(scores) > 1 else 0.0
    return float(scores_t.mean()), std


# ---- image batches -----------------------------------------------------------------------

def _to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """A batch (B, 3, H, W) (or one image (3, H, W)) as float32 in [-1, 1].
    uint8 is taken as [0, 255]; float as already in [-1, 1]."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise NarError(f"expected image tensors, got {type(x).__name__}")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[1] != 3:
        raise NarError(f"expected images (B, 3, H, W), got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x.float() / 127.5 - 1.0
    return x.float()


def iter_batches(images: Images, batch_size: int) -> Iterable[torch.Tensor]:
    """Batches (b, 3, H, W) in [-1, 1] from a tensor / array (N, 3, H, W) or an iterable of
    images, batches, or (image, label) pairs such as a dataset or a DataLoader."""
    if isinstance(images, (torch.Tensor, np.ndarray)):
        x = _to_unit_range(images) if images.ndim == 3 else images
        for i in range(0, x.shape[0], batch_size):
            yield _to_unit_range(x[i:i + batch_size])
        return
    pending: list[torch.Tensor] = []
    count = 0
    for item in images:
        if isinstance(item, (tuple, list)):
            item = item[0]  # (image, label)
        b = _to_unit_range(item)
        pending.append(b)
        count += b.shape[0]
        if count >= batch_size:
            yield torch.cat(pending)
            pending, count = [], 0
    if pending:
        yield torch.cat(pending)


@torch.no_grad()
def extract(images: Images, nets: dict[str, Any], batch_size: int = 64,
            limit: int | None = None) -> tuple[int, dict[str, dict[str, torch.Tensor]]]:
    """Run every net over the images once; returns (n, {net: {"features", "logits"}})."""
    out: dict[str, dict[str, list[torch.Tensor]]] = {k: {"features": [], "logits": []} for k in nets}
    n = 0
    for batch in iter_batches(images, batch_size):
        if limit is not None:
            if n >= limit:
                break
            batch = batch[:limit - n]
        n += batch.shape[0]
        for name, net in nets.items():
            feats, logits = net.embed(batch) if hasattr(net, "embed") else net(batch)
            out[name]["features"].append(feats.float().cpu())
            out[name]["logits"].append(logits.float().cpu())
    if n == 0:
        raise NarError("no images to evaluate")
    return n, {k: {f: torch.cat(v) for f, v in d.items()} for k, d in out.items()}


# ---- the report --------------------------------------------------------------------------

def _resolve_inception(inception, device):
    """None → look in the torch hub cache; False → skip; str/Path → load; a model → use."""
    from nar.eval.inception import InceptionFeatures, load_inception
    if inception is False:
        return None
    if inception is None or isinstance(inception, (str, bytes)) or hasattr(inception, "__fspath__"):
        return load_inception(inception, device=device)
    if isinstance(inception, InceptionFeatures) or hasattr(inception, "embed") or callable(inception):
        return inception
    raise NarError(f"inception must be None, False, a path or a loaded model, got {type(inception).__name__}")


def evaluate_images(real: Images, fake: Images, feature: str = "nar", inception=None,
                    k: int = 3, batch_size: int = 64, device: str | torch.device = "cpu",
                    classifier=None, is_splits: int = 10, limit: int | None = None,
                    fake_labels: torch.Tensor | None = None) -> dict[str, Any]:
    """Compare generated images with real ones; images in [-1, 1] (or uint8).

    ``real`` / ``fake``: tensors (N, 3, H, W), or iterables of images / batches / (image,
    label) pairs. ``feature``: the space for precision / recall / density / coverage
    ("nar" or "inception"). ``inception``: None looks in the torch hub cache, False skips
    it, a path loads that file, or pass a model from `load_inception`. ``classifier``: a
    scene classifier (default: the shipped one). ``limit``: use at most that many images
    of each set. ``fake_labels``: the class each fake image was asked for (ids in the scene
    classifier's order); adds its class fidelity, read off the logits the features came with:
    ``"class_fidelity"`` (the share classified as asked) and ``"class_fidelity_detail"`` (per class
    and the confusion matrix, rows asked, columns seen).

    Returns ``{"fd_nar", "precision", "recall", "density", "coverage", "is_nar",
    "is_nar_std", "fid", "is_inception", "is_inception_std", "n_real", "n_fake", "k",
    "feature", "labels"}``; ``fid`` and ``is_inception`` are None without Inception weights.
    """
    from nar.eval.scene_classifier import accuracy_report, shipped_scene_classifier

    if feature not in ("nar", "inception"):
        raise NarError(f"unknown feature space {feature!r}; use 'nar' or 'inception'")
    nets: dict[str, Any] = {"nar": classifier if classifier is not None else shipped_scene_classifier(device)}
    incep = _resolve_inception(inception, device)
    if incep is not None:
        nets["inception"] = incep
    if feature == "inception" and incep is None:
        raise NarError("feature='inception' needs Inception weights (none were found); use feature='nar'")

    n_real, real_out = extract(real, nets, batch_size, limit)
    n_fake, fake_out = extract(fake, nets, batch_size, limit)
    for name, n in (("real", n_real), ("fake", n_fake)):
        if n <= k:
            raise NarError(f"need more than k={k} {name} images for precision / recall, got {n}")

    is_nar, is_nar_std = inception_score(fake_out["nar"]["logits"], is_splits)
    report: dict[str, Any] = {
        "fd_nar": frechet_from_features(real_out["nar"]["features"], fake_out["nar"]["features"]),
        **prdc(real_out[feature]["features"], fake_out[feature]["features"], k=k),
        "is_nar": is_nar, "is_nar_std": is_nar_std,
        "fid": None, "is_inception": None, "is_inception_std": None,
        "n_real": n_real, "n_fake": n_fake, "k": k, "feature": feature,
    }
    labels = {"fd_nar": FD_NAR_LABEL, "is_nar": IS_NAR_LABEL,
              "precision": f"precision ({feature} features, k={k})",
              "recall": f"recall ({feature} features, k={k})",
              "density": f"density ({feature} features, k={k})",
              "coverage": f"coverage ({feature} features, k={k})",
              "fid": "FID (no Inception weights)", "is_inception": "IS (no Inception weights)"}
    if incep is not None:
        report["fid"] = frechet_from_features(real_out["inception"]["features"], fake_out["inception"]["features"])
        report["is_inception"], report["is_inception_std"] = inception_score(fake_out["inception"]["logits"], is_splits)
        labels["fid"] = getattr(incep, "fid_label", "FID (unknown Inception)")
        labels["is_inception"] = getattr(incep, "is_label", "IS (unknown Inception)")
    if fake_labels is not None:
        if fake_labels.shape[0] < n_fake:
            raise NarError(f"{fake_labels.shape[0]} labels for {n_fake} fake images")
        detail = accuracy_report(list(nets["nar"].classes), fake_labels[:n_fake],
                                 fake_out["nar"]["logits"].argmax(1))
        report["class_fidelity"] = detail.pop("accuracy")
        report["class_fidelity_detail"] = detail
        labels["class_fidelity"] = "class fidelity (nar's scene classifier)"
    report["labels"] = labels
    return report


def format_report(report: dict[str, Any]) -> str:
    """One line per metric, each with its label, e.g. for logs."""
    labels = report.get("labels", {})
    lines = []
    for key in ("fd_nar", "fid", "is_nar", "is_inception", "precision", "recall", "density", "coverage"):
        value = report.get(key)
        text = "n/a" if value is None else f"{value:.4g}"
        lines.append(f"{labels.get(key, key)}: {text}")
    lines.append(f"images: {report.get('n_real')} real, {report.get('n_fake')} fake")
    return "\n".join(lines)
