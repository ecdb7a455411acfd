"""Device picking: the one place that turns "auto" / "cpu" / "cuda[:i]" into a torch.device."""
from __future__ import annotations

import contextlib
import functools

import torch

from nar.core.errors import NarError

__all__ = ["pick_device", "PRECISIONS", "native_bf16", "use_bf16", "precision_context"]

PRECISIONS = ("auto", "fp32", "bf16")


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


@functools.lru_cache(maxsize=None)
def _cpu_bf16() -> bool:
    try:  # oneDNN's own check: AVX512-BF16 or AMX (e.g. AMD Zen 4, Intel Sapphire Rapids)
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 matmuls and convolutions natively: a CUDA GPU that supports
    bf16, or a CPU with AVX512-BF16 / AMX (where bf16 roughly halves sampling and decoding
    time); CPUs without them would emulate it, slower than fp32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and _cpu_bf16()


def use_bf16(device: torch.device, precision: str = "auto") -> bool:
    """``precision``: ``fp32``, ``bf16``, or ``auto`` = bf16 where the hardware has it natively."""
    if precision not in PRECISIONS:
        raise NarError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision == "bf16" or (precision == "auto" and native_bf16(device))


def precision_context(device: torch.device, precision: str = "auto"):
    """bf16 autocast on ``device`` when `use_bf16` says so, else a no-op context."""
    device = torch.device(device)
    if use_bf16(device, precision):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
