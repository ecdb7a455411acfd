"""Wall-clock timing that is honest on GPUs, and peak-memory readings (the one copy of
CUDA synchronize + clock that sampling, the bench and the benchmarks share).

CUDA kernels run asynchronously: ``time.perf_counter()`` around a launch measures the
launch, not the work. `Timer` therefore synchronizes the device *before* a timed region
(so earlier queued work is not billed to it) and *after* it (so its own work is), and
only then reads the clock. On the CPU there is nothing to synchronize and it does not.

The clock and the synchronize function are injectable, so tests can check the order of
calls with a fake CUDA device and a mock clock, without a GPU::

    timer = Timer("cuda", clock=fake_clock, synchronize=fake_sync)
    with timer.region() as t:
        work()
    t.seconds
"""
from __future__ import annotations

import math
import resource
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch

__all__ = ["Timer", "Timing", "percentile", "summarize", "PeakMemory", "sync", "rss_high_water_mb"]


def sync(device: str | torch.device) -> None:
    """Wait for queued GPU work, so a clock read after it bills the work (no-op off CUDA)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """The result of one timed region (filled in when the region ends)."""
    seconds: float = float("nan")


class Timer:
    """Times regions on ``device``; synchronizes CUDA around each region.

    ``clock``: a function returning seconds (default ``time.perf_counter``).
    ``synchronize``: called with no arguments to wait for the device (default
    ``torch.cuda.synchronize(device)``); only ever called when the device is CUDA.
    """

    def __init__(self, device: str | torch.device = "cpu", clock: Callable[[], float] = time.perf_counter,
                 synchronize: Callable[[], Any] | None = None):
        self.device = torch.device(device)
        self.clock = clock
        self._synchronize = synchronize

    @property
    def synchronizes(self) -> bool:
        return self.device.type == "cuda"

    def sync(self) -> None:
        """Wait for all queued work on the device (a no-op off CUDA)."""
        if not self.synchronizes:
            return
        if self._synchronize is not None:
            self._synchronize()
        else:
            sync(self.device)

    @contextmanager
    def region(self) -> Iterator[Timing]:
        """``with timer.region() as t: ...`` then ``t.seconds``. The clock is read after a
        synchronize on entry and after another on exit."""
        out = Timing()
        self.sync()
        start = self.clock()
        yield out
        self.sync()
        out.seconds = self.clock() - start

    def time(self, fn: Callable[..., Any], *args, **kwargs) -> tuple[Any, float]:
        """``(fn(*args, **kwargs), seconds)``, timed like `region`."""
        with self.region() as t:
            result = fn(*args, **kwargs)
        return result, t.seconds


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between order statistics
    (numpy's default method). NaN for an empty sequence."""
    xs = sorted(float(v) for v in values)
    if not xs:
        return float("nan")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, mean, min, max and the number of timed runs."""
    xs = [float(v) for v in values]
    if not xs:
        nan = float("nan")
        return {"p50": nan, "p90": nan, "mean": nan, "min": nan, "max": nan, "n": 0}
    return {"p50": percentile(xs, 50), "p90": percentile(xs, 90), "mean": sum(xs) / len(xs),
            "min": min(xs), "max": max(xs), "n": len(xs)}


class PeakMemory:
    """Peak memory of a region.

    On CUDA: ``torch.cuda.max_memory_allocated`` after resetting the peak at `reset`
    (tensors allocated by torch on that device; the region's own high-water mark).
    Elsewhere: the process's resident-set high-water mark (``getrusage`` ru_maxrss). That
    figure is process-wide and can never be reset, so it is the peak of everything the
    process has done so far, not of the region alone; `kind` says which one you got.
    """

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)

    @property
    def kind(self) -> str:
        return "cuda_max_allocated" if self.device.type == "cuda" else "process_rss_high_water"

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_mb(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return rss_high_water_mb()


def rss_high_water_mb() -> float:
    """The process's peak resident set size in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
