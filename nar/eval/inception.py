"""Inception-v3 features for FID / IS — only when the user has the weights.

nar never downloads anything. ``load_inception(path)`` looks at ``path`` or, without one,
in the torch hub cache (``$TORCH_HOME/hub/checkpoints``, usually ``~/.cache/torch/hub/checkpoints``)
for one of:

- ``pt_inception-2015-12-05-6726825d.pth`` — the pytorch-fid port of the TensorFlow FID
  Inception (1008 classes, no aux head). That network differs slightly from torchvision's
  Inception-v3: its average pools ignore the zero padding (TF semantics) and the last block
  (Mixed_7c) pools with max instead of average. nar patches those blocks, so features match
  pytorch-fid's and the result is labelled plainly **"FID"** (comparable with published
  numbers up to pytorch-fid's own small differences from the TF reference).
- ``inception_v3_google-0cc3c7bd.pth`` — torchvision's ImageNet Inception-v3. Its features
  are *not* the FID-standard ones; the result is labelled **"FID (torchvision Inception)"**
  and must not be compared with published FIDs.

Files are read with ``torch.load(..., weights_only=True)`` (never a full unpickle) or as
``.safetensors``. The model is torchvision's ``inception_v3(weights=None, init_weights=False)``.
Inputs are images in [-1, 1], resized to 299×299 (bilinear); outputs are the pool3 2048-d
features (FID) and the classifier logits (IS).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nar.core.errors import NarError

FID_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"
TORCHVISION_WEIGHTS = "inception_v3_google-0cc3c7bd.pth"
KNOWN_FILES = (FID_WEIGHTS, TORCHVISION_WEIGHTS)
INPUT_SIZE = 299
FEATURE_DIM = 2048

_told_missing = False


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_inception_weights() -> Path | None:
    """The first known Inception weight file in the torch hub cache, or None."""
    for name in KNOWN_FILES:
        p = hub_checkpoint_dir() / name
        if p.is_file():
            return p
    return None


# ---- the FID-specific blocks (TF pooling semantics) --------------------------------------

def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _max_pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


def _forward_a(self, x):
    b5 = self.branch5x5_2(self.branch5x5_1(x))
    b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(self._pool(x))], 1)


def _forward_c(self, x):
    b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    bd = self.branch7x7dbl_1(x)
    for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
        bd = layer(bd)
    return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(self._pool(x))], 1)


def _forward_e(self, x):
    b3 = self.branch3x3_1(x)
    b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
    bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
    return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(self._pool(x))], 1)


def _patch_block(block: nn.Module, forward, pool) -> None:
    """Swap a torchvision Inception block's forward for one with TF pooling (weights unchanged)."""
    block._pool = pool
    block.forward = forward.__get__(block, type(block))


def _patch_for_fid(net: nn.Module) -> None:
    for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):
        _patch_block(getattr(net, name), _forward_a, _tf_avg_pool)
    for name in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
        _patch_block(getattr(net, name), _forward_c, _tf_avg_pool)
    _patch_block(net.Mixed_7b, _forward_e, _tf_avg_pool)
    _patch_block(net.Mixed_7c, _forward_e, _max_pool)


# ---- the wrapper -------------------------------------------------------------------------

@dataclass
class InceptionInfo:
    path: str
    fid_exact: bool      # True: pytorch-fid / TF FID network; False: torchvision ImageNet net
    num_classes: int

    @property
    def fid_label(self) -> str:
        return "FID" if self.fid_exact else "FID (torchvision Inception)"

    @property
    def is_label(self) -> str:
        return "IS" if self.fid_exact else "IS (torchvision Inception)"


class InceptionFeatures(nn.Module):
    """Inception-v3 returning pool3 features (B, 2048) and logits (B, classes) for [-1, 1] images."""

    feature_dim = FEATURE_DIM

    def __init__(self, net: nn.Module, info: InceptionInfo):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.info = info

    @property
    def fid_label(self) -> str:
        return self.info.fid_label

    @property
    def is_label(self) -> str:
        return self.info.is_label

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise NarError(f"expected images (B, 3, H, W), got shape {tuple(images.shape)}")
        x = images.to(self.device, torch.float32)
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return x

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pool3 features (B, 2048), logits (B, classes)), both float32."""
        n = self.net
        x = self._prepare(images)
        for layer in (n.Conv2d_1a_3x3, n.Conv2d_2a_3x3, n.Conv2d_2b_3x3, n.maxpool1,
                      n.Conv2d_3b_1x1, n.Conv2d_4a_3x3, n.maxpool2,
                      n.Mixed_5b, n.Mixed_5c, n.Mixed_5d, n.Mixed_6a, n.Mixed_6b, n.Mixed_6c,
                      n.Mixed_6d, n.Mixed_6e, n.Mixed_7a, n.Mixed_7b, n.Mixed_7c):
            x = layer(x)
        feats = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return feats.float(), n.fc(feats).float()

    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self(images)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self(images)[0]

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self(images)[1]


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses anything but tensors and plain containers
        raise NarError(f"{path} could not be read as plain Inception weights "
                       f"(torch.load weights_only=True): {e}") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise NarError(f"{path} does not hold an Inception state dict")
    return sd


def build_inception(state_dict: dict[str, torch.Tensor], path: str = "<memory>") -> InceptionFeatures:
    """torchvision Inception-v3 with ``state_dict`` loaded; FID patches when it is the
    pytorch-fid / TF FID network (recognised by its 1008-class head and missing aux head)."""
    from torchvision.models import inception_v3

    if "fc.weight" not in state_dict:
        raise NarError(f"{path} is not an Inception-v3 state dict (no fc.weight)")
    num_classes = int(state_dict["fc.weight"].shape[0])
    has_aux = any(k.startswith("AuxLogits.") for k in state_dict)
    fid_exact = num_classes == 1008 and not has_aux
    with torch.device("meta"):  # no time spent initialising weights that are overwritten
        net = inception_v3(weights=None, aux_logits=has_aux, init_weights=False,
                           num_classes=num_classes, transform_input=False)
    try:
        net.load_state_dict(state_dict, strict=True, assign=True)
    except RuntimeError as e:
        raise NarError(f"{path} does not match torchvision's Inception-v3: {str(e).splitlines()[0]}") from None
    if fid_exact:
        _patch_for_fid(net)
    return InceptionFeatures(net, InceptionInfo(path=str(path), fid_exact=fid_exact, num_classes=num_classes))


def load_inception(path: str | Path | None = None, device: str | torch.device = "cpu",
                   quiet: bool = False) -> InceptionFeatures | None:
    """Inception features from ``path``, else from the torch hub cache; None when absent.

    A ``path`` that is given but missing is a user error (NarError). Without a path and
    without cached weights, one line on stderr says so (once per process) and None is
    returned: callers then report FID / IS as unavailable. Nothing is ever downloaded.
    """
    global _told_missing
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise NarError(f"Inception weights not found: {p}")
    else:
        p = find_inception_weights()
        if p is None:
            if not quiet and not _told_missing:
                print(f"nar: no Inception weights ({FID_WEIGHTS} or {TORCHVISION_WEIGHTS} in "
                      f"{hub_checkpoint_dir()}, or --inception PATH); FID and IS are skipped "
                      "(FD on nar features is reported instead)", file=sys.stderr)
                _told_missing = True
            return None
    model = build_inception(_read_state_dict(p), str(p))
    return model.to(device)
