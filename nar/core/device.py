"""Device picking: the one place that turns "auto" / "cpu" / "cuda[:i]" into a torch.device."""
from __future__ import annotations

import torch

from nar.core.errors import NarError

__all__ = ["pick_device"]


def pick_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cpu`` / ``cuda[:i]`` as given. A CUDA
    device asked for on a machine without one is a `NarError`, not a deep torch failure."""
    if isinstance(name, torch.device):
        name = str(name)
    name = str(name).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise NarError(f"device {name!r} was asked for but no CUDA GPU is available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise NarError(f"unknown device {name!r}; use auto, cpu or cuda[:index]") from None
