"""nar's own feature space: a small CNN trained to tell the procedural scenes apart.

Standard FID needs Inception weights that cannot be downloaded everywhere, so nar ships a
feature network of its own: five conv stages (stride-2 conv + BN + ReLU, the middle three
followed by a second 3×3 conv) → global average pool → a 256-d feature → one linear layer over the
scene classes. It is trained on the procedural landscapes' scene labels
(`scripts/train_scene_classifier.py`, with the shared training loop) at 128² — images of
any resolution are downsampled (bilinear, antialiased) to 128² first — and its weights ship
in ``nar/assets/scene_classifier.safetensors`` (fp16, ~1 MB).

A Fréchet distance on these features is **"FD (nar features)"**: a sanity metric in a
feature space tuned to this project's data, never to be called or compared with FID.
"""
from __future__ import annotations

import importlib.resources
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from nar.core.checkpoint import expect_kind, load_checkpoint
from nar.core.errors import NarError

KIND = "scene_classifier"
ASSET_NAME = "scene_classifier.safetensors"


@dataclass
class SceneClassifierConfig:
    classes: tuple[str, ...] = ("mountains", "lake", "coast", "desert", "forest", "city")
    input_size: int = 128
    widths: tuple[int, ...] = (16, 32, 64, 128, 256)   # last width = feature dimension
    double: tuple[bool, ...] = (False, True, True, True, False)  # a second 3x3 conv in the stage

    def __post_init__(self):
        if len(self.double) != len(self.widths):
            raise NarError(f"scene classifier config: {len(self.widths)} widths but "
                           f"{len(self.double)} 'double' flags")

    @property
    def feature_dim(self) -> int:
        return self.widths[-1]


def _conv_bn(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SceneClassifier(nn.Module):
    """Images (B, 3, H, W) in [-1, 1] → features (B, D) and logits (B, classes)."""

    def __init__(self, cfg: SceneClassifierConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or SceneClassifierConfig()
        layers: list[nn.Module] = []
        cin = 3
        for i, w in enumerate(cfg.widths):
            layers += _conv_bn(cin, w, stride=2)
            if cfg.double[i]:
                layers += _conv_bn(w, w, stride=1)
            cin = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cfg.feature_dim, len(cfg.classes))

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.cfg.classes)

    @property
    def feature_dim(self) -> int:
        return self.cfg.feature_dim

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Move to the model's device as float32 and resize to input_size² (antialiased)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise NarError(f"expected images (B, 3, H, W), got shape {tuple(images.shape)}")
        x = images.to(self.device, torch.float32)
        s = self.cfg.input_size
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False,
                              antialias=x.shape[-2] > s or x.shape[-1] > s)
        return x

    def features_and_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(self.prepare(images))
        feats = h.mean(dim=(2, 3))
        return feats, self.head(feats)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(images)[1]

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, D) pooled features of images in [-1, 1] (eval mode, no grad)."""
        return self.embed(images)[0]

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B, classes) logits (eval mode, no grad)."""
        return self.embed(images)[1]

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (B, D), logits (B, classes)) in one pass (eval mode, no grad)."""
        was_training = self.training
        self.eval()
        try:
            feats, logits = self.features_and_logits(images)
            return feats.float(), logits.float()
        finally:
            self.train(was_training)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> list[str]:
        return [self.classes[i] for i in self.logits(images).argmax(dim=1).tolist()]

    def meta(self) -> dict[str, Any]:
        cfg = asdict(self.cfg)
        cfg["classes"] = list(cfg["classes"])
        cfg["widths"] = list(cfg["widths"])
        cfg["double"] = list(cfg["double"])
        return {"kind": KIND, "name": KIND, "classes": list(self.classes),
                "input_size": self.cfg.input_size, "feature_dim": self.feature_dim, "config": cfg}


# ---- loading -----------------------------------------------------------------------------

def default_path() -> Path:
    """Path of the shipped weights inside the installed package."""
    return Path(str(importlib.resources.files("nar") / "assets" / ASSET_NAME))


def config_from_meta(meta: dict[str, Any]) -> SceneClassifierConfig:
    cfg = meta.get("config") or {}
    return SceneClassifierConfig(classes=tuple(meta.get("classes", cfg.get("classes", ()))),
                                 input_size=int(meta.get("input_size", cfg.get("input_size", 128))),
                                 widths=tuple(cfg.get("widths", SceneClassifierConfig.widths)),
                                 double=tuple(bool(b) for b in cfg.get("double", SceneClassifierConfig.double)))


def load_scene_classifier(path: str | Path | None = None,
                          device: str | torch.device = "cpu") -> SceneClassifier:
    """The scene classifier from ``path`` (default: the shipped asset), in eval mode, float32."""
    p = Path(path) if path is not None else default_path()
    if path is None and not p.is_file():
        raise NarError(f"the shipped scene classifier is missing ({p}); "
                       "train it with scripts/train_scene_classifier.py")
    tensors, meta = load_checkpoint(p)
    expect_kind(meta, KIND, p)
    model = SceneClassifier(config_from_meta(meta))
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise NarError(f"{p} does not match the scene classifier architecture: "
                       f"{str(e).splitlines()[0]}") from None
    model.shipped_meta = meta  # accuracy and provenance recorded at training time
    return model.to(device).eval().requires_grad_(False)


_CACHE: dict[tuple[str, str], SceneClassifier] = {}


def shipped_scene_classifier(device: str | torch.device = "cpu") -> SceneClassifier:
    """The shipped classifier, loaded once per process and device."""
    key = (str(default_path()), str(torch.device(device)))
    if key not in _CACHE:
        _CACHE[key] = load_scene_classifier(None, device)
    return _CACHE[key]


# ---- training ----------------------------------------------------------------------------

@dataclass
class Augment:
    min_crop: float = 0.65      # random crop side as a fraction of the image side
    flip: bool = True
    blur_prob: float = 0.3      # down-up resampling by 2-4x: robustness to soft decoder output
    jitter: float = 0.1         # brightness / contrast jitter amplitude
    noise: float = 0.03         # gaussian pixel noise std (in [-1, 1] units)


def render_scene_set(n_per_class: int, render_size: int, store_size: int, seed: int,
                     classes: tuple[str, ...] | None = None,
                     on_image: Callable[[int], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Procedural landscapes, ``n_per_class`` of each scene, rendered at ``render_size``²
    and stored (antialiased) at ``store_size``² as uint8 (N, 3, S, S), with scene ids (N,).
    Seeds are ``seed, seed+1, ...``; the scene is forced round-robin. ``on_image(i + 1)``
    is called after each image (progress)."""
    from nar.data.landscapes import SCENES, generate_landscape

    classes = tuple(classes or SCENES)
    n = n_per_class * len(classes)
    images = torch.empty(n, 3, store_size, store_size, dtype=torch.uint8)
    labels = torch.empty(n, dtype=torch.long)
    for i in range(n):
        c = i % len(classes)
        img, _ = generate_landscape(seed + i, render_size, render_size, scene=classes[c])
        x = torch.from_numpy(img).permute(2, 0, 1)
        if render_size != store_size:
            x = F.interpolate(x[None].float(), size=(store_size, store_size), mode="bilinear",
                              align_corners=False, antialias=True)[0]
            x = x.round().clamp(0, 255).to(torch.uint8)
        images[i] = x
        labels[i] = c
        if on_image is not None:
            on_image(i + 1)
    return images, labels


def landscapes_fingerprint(reload: bool = False) -> str:
    """Hash of six small renders of the procedural generator. Stored with the shipped
    weights: when it no longer matches, the generator changed and the classifier should be
    retrained (``reload``: re-read the nar/data/landscapes package from disk first)."""
    import hashlib
    import importlib

    import nar.data.landscapes as landscapes
    if reload:  # the painters first, then the modules that import them
        from nar.data.landscapes import dataset, light, noise, scenes, sky, terrain
        for module in (noise, light, sky, terrain, scenes, dataset):
            importlib.reload(module)
        landscapes = importlib.reload(landscapes)
    h = hashlib.sha256()
    for i, scene in enumerate(landscapes.SCENES):
        h.update(landscapes.generate_landscape(i, 64, 64, scene=scene)[0].tobytes())
    return h.hexdigest()[:16]


def uint8_to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] → float32 [-1, 1]."""
    return x.float() / 127.5 - 1.0


class SceneClassifierTask:
    """`TrainTask` for the scene classifier: batches from an in-memory uint8 image cache."""

    def __init__(self, model: SceneClassifier, images: torch.Tensor, labels: torch.Tensor,
                 batch_size: int = 64, augment: Augment | None = None, label_smoothing: float = 0.05):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise NarError("SceneClassifierTask wants uint8 images (N, 3, H, W)")
        self.model = model
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.augment = augment if augment is not None else Augment()
        self.label_smoothing = label_smoothing

    def optimizers(self) -> dict[str, list]:
        return {"classifier": list(self.model.parameters())}

    def checkpoint_meta(self) -> dict[str, Any]:
        meta = self.model.meta()
        meta["augment"] = asdict(self.augment)
        return meta

    def make_batch(self, idx: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Augmented float batch at the model's input size, from cached uint8 images.

        One crop size per batch (offsets per image), one batched resize, blur on a random
        subset: cheap enough for CPU training."""
        a, s = self.augment, self.model.cfg.input_size
        side = self.images.shape[-1]
        frac = a.min_crop + (1 - a.min_crop) * float(torch.rand((), generator=g))
        c = max(8, int(round(side * frac)))
        ys = torch.randint(0, side - c + 1, (len(idx),), generator=g).tolist()
        xs = torch.randint(0, side - c + 1, (len(idx),), generator=g).tolist()
        crops = torch.stack([self.images[i, :, y:y + c, x:x + c] for i, y, x in zip(idx.tolist(), ys, xs)])
        out = uint8_to_unit(crops)
        if c != s:
            out = F.interpolate(out, size=(s, s), mode="bilinear", align_corners=False, antialias=c > s)
        if a.blur_prob > 0:
            sel = (torch.rand(len(idx), generator=g) < a.blur_prob).nonzero().flatten()
            if len(sel):
                f = 2 + int(torch.randint(0, 3, (), generator=g))
                low = F.interpolate(out[sel], size=(s // f, s // f), mode="bilinear", antialias=True)
                out[sel] = F.interpolate(low, size=(s, s), mode="bilinear", align_corners=False)
        if a.flip:
            flip = torch.rand(len(idx), generator=g) < 0.5
            out[flip] = out[flip].flip(-1)
        if a.jitter > 0:
            b = (torch.rand(len(idx), 1, 1, 1, generator=g) * 2 - 1) * a.jitter
            k = 1 + (torch.rand(len(idx), 1, 1, 1, generator=g) * 2 - 1) * a.jitter
            mean = out.mean(dim=(1, 2, 3), keepdim=True)
            out = (out - mean) * k + mean + b
        if a.noise > 0:
            out = out + a.noise * torch.randn(out.shape, generator=g)
        return out.clamp(-1, 1)

    def train_step(self, step: int, generator: torch.Generator, optimize) -> dict[str, float]:
        idx = torch.randint(0, self.images.shape[0], (self.batch_size,), generator=generator)
        x = self.make_batch(idx, generator).to(self.model.device)
        y = self.labels[idx].to(self.model.device)
        logits = self.model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)
        optimize("classifier", loss)
        acc = (logits.argmax(1) == y).float().mean()
        return {"loss": float(loss.detach()), "acc": float(acc)}

    def snapshot(self, model: nn.Module, step: int, out_dir: Path) -> None:
        return None  # nothing to draw for a classifier


def accuracy_report(classes: list[str], labels: torch.Tensor, predicted: torch.Tensor) -> dict[str, Any]:
    """Accuracy (overall and per class) and the confusion matrix (rows: true class, columns:
    predicted) of ``predicted`` class ids against ``labels``."""
    k = len(classes)
    confusion = torch.bincount(labels.long().cpu() * k + predicted.long().cpu(), minlength=k * k).reshape(k, k)
    per_class = (confusion.diag().double() / confusion.sum(1).clamp(min=1)).tolist()
    return {"accuracy": float(confusion.diag().sum() / confusion.sum().clamp(min=1)),
            "per_class": dict(zip(classes, per_class)),
            "confusion": confusion.tolist()}


@torch.no_grad()
def evaluate_accuracy(model: SceneClassifier, images: torch.Tensor, labels: torch.Tensor,
                      batch_size: int = 128) -> dict[str, Any]:
    """Accuracy (overall and per class) and the confusion matrix on uint8 or [-1, 1] images."""
    predicted = []
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size]
        x = uint8_to_unit(x) if x.dtype == torch.uint8 else x
        predicted.append(model.logits(x).argmax(1).cpu())
    return accuracy_report(list(model.classes), labels, torch.cat(predicted))
