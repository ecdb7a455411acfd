"""Where benchmark numbers come from, and the device set-up every benchmark shares.

`environment` records device, cores, threads, library versions, commit and load average
(other work on a machine slows every number down, so results carry it). `setup_device`
is the one place that turns ``--device`` / ``--threads`` into a usable device.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from nar.core.device import pick_device
from nar.core.errors import NarError
from nar.core.timing import sync  # noqa: F401  (re-exported: benchmarks import it from here)

__all__ = ["DTYPES", "add_run_args", "cpu_model", "device_name", "device_slug", "environment", "int_tuple",
           "loadavg", "setup_device", "sync"]

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def setup_device(device: str = "cpu", threads: int | None = None) -> torch.device:
    """``cpu`` | ``cuda[:i]`` | ``auto`` -> torch.device (one clear error when CUDA is asked
    for but absent); sets torch's CPU threads when given."""
    dev = pick_device(device)
    if threads is not None:
        if threads < 1:
            raise NarError(f"CPU threads must be >= 1, got {threads}")
        torch.set_num_threads(int(threads))
    return dev


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({cpu_model()})"


def device_slug(device: torch.device) -> str:
    """Folder name for a device's results: ``cpu`` or e.g. ``nvidia-h100-80gb-hbm3``."""
    if device.type != "cuda":
        return "cpu"
    return re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(device).lower()).strip("-") or "cuda"


def _version(dist: str) -> str | None:
    from importlib import metadata
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def loadavg() -> str | None:
    """1/5/15-minute load averages."""
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except (AttributeError, OSError):
        return None


def environment(device: torch.device) -> dict[str, Any]:
    """Device, cores, threads, library versions, commit and load average at call time."""
    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    env = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "device": str(device),
        "device_name": device_name(device),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "nar": _version("nar") or "(not installed; source tree)",
        "x_transformers": _version("x-transformers"),
        "vector_quantize_pytorch": _version("vector-quantize-pytorch"),
        "numpy": _version("numpy"),
        "commit": commit,
        "commit_dirty": bool(dirty) if dirty is not None else None,
        "load_avg_start": loadavg(),
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
        props = torch.cuda.get_device_properties(device)
        env["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
    return env


def int_tuple(text: str) -> tuple[int, ...]:
    """argparse type for comma-separated integers: ``"16,32,64"`` -> (16, 32, 64)."""
    return tuple(int(v) for v in text.split(",") if v.strip())


def add_run_args(parser, results: Path, cpu_cell_budget: float | None = None) -> None:
    """The options every component benchmark under benchmarks/ takes: where it runs, how
    often each cell is timed, which cells are too slow to run, where results go."""
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per cell (default: 3 CUDA, 1 CPU)")
    if cpu_cell_budget is not None:
        parser.add_argument("--cell-budget", type=float, default=None,
                            help=f"skip cells predicted to take longer (s; default {cpu_cell_budget:g} on CPU, "
                                 "none on CUDA)")
    parser.add_argument("--out", type=Path, default=results, help="results folder")
