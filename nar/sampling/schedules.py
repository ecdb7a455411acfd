"""Mask schedules for iterative parallel decoding (MaskGIT / Muse).

A schedule is a function γ(r) on r ∈ [0, 1], decreasing from γ(0) = 1 (everything masked)
to γ(1) = 0 (nothing masked). It is used twice:

* training: the fraction of tokens to mask is γ(u) with u ~ U(0, 1) (for the cosine schedule
  this is the MaskGIT/Muse ratio r = cos(π/2 · u), biased towards heavy masking);
* sampling with T steps: after step t (t = 0 .. T-1), n_t = floor(N · γ((t+1)/T)) of the N
  unknown tokens are still masked (`mask_counts`).

Schedules are looked up by name in ``SCHEDULES``; add one with ``@register_schedule("name")``.
"""
from __future__ import annotations

import math
from typing import Callable

from nar.core.errors import NarError

Schedule = Callable[[float], float]

SCHEDULES: dict[str, Schedule] = {}


def register_schedule(name: str) -> Callable[[Schedule], Schedule]:
    def add(fn: Schedule) -> Schedule:
        if name in SCHEDULES:
            raise ValueError(f"mask schedule {name!r} is registered twice")
        SCHEDULES[name] = fn
        return fn
    return add


@register_schedule("cosine")
def cosine(r: float) -> float:
    """cos(π/2 · r): the MaskGIT / Muse default; fixes few tokens early, many late."""
    return math.cos(math.pi / 2 * r)


@register_schedule("linear")
def linear(r: float) -> float:
    return 1.0 - r


@register_schedule("square")
def square(r: float) -> float:
    return 1.0 - r ** 2


@register_schedule("cubic")
def cubic(r: float) -> float:
    return 1.0 - r ** 3


@register_schedule("arccos")
def arccos(r: float) -> float:
    """(2/π) · arccos(r): the Halton sampler's counts (Besnier et al. 2025). Fixes a near-constant
    share early and many tokens in the last steps, when each masked cell has fixed neighbours."""
    return 2.0 / math.pi * math.acos(min(max(r, 0.0), 1.0))


@register_schedule("sqrt")
def sqrt(r: float) -> float:
    """1 - √r: fixes many tokens early (the opposite bias to the concave schedules)."""
    return 1.0 - math.sqrt(r)


def schedule_names() -> list[str]:
    return sorted(SCHEDULES)


def get_schedule(schedule: str | Schedule) -> Schedule:
    """A schedule by name (or a callable γ passed through)."""
    if callable(schedule):
        return schedule
    if schedule not in SCHEDULES:
        raise NarError(f"unknown mask schedule {schedule!r}; known: {', '.join(schedule_names())}")
    return SCHEDULES[schedule]


def mask_counts(n: int, steps: int, schedule: str | Schedule = "cosine") -> list[int]:
    """How many of ``n`` unknown tokens are still masked after each decoding step.

    Entry t is n_t = floor(n · γ((t+1)/T)), clamped so that

    * every step fixes at least one new token:     n_t <= n_{t-1} - 1   (n_{-1} = n),
    * every later step still has one to fix:       n_t >= T - 1 - t,
    * the last step fixes everything:              n_{T-1} = 0.

    The second clamp is MaskGIT's "keep at least one masked until the end", generalised so
    that no step is wasted on a grid with nothing left to predict.

    T > n: there are not enough tokens for T steps that each fix one, so T is clamped to n
    and the list has n entries (one token fixed per step). The caller reports ``len(...)``
    as the number of steps actually run. n = 0 gives an empty list (nothing to sample).
    """
    n, steps = int(n), int(steps)
    if n < 0:
        raise ValueError(f"token count must be >= 0, got {n}")
    if steps < 1:
        raise NarError(f"steps must be at least 1 (got {steps})")
    gamma = get_schedule(schedule)
    steps = min(steps, n)
    counts: list[int] = []
    prev = n
    for t in range(steps):
        target = math.floor(n * gamma((t + 1) / steps))
        remaining = min(max(target, steps - 1 - t), prev - 1)
        counts.append(remaining)
        prev = remaining
    if counts:
        counts[-1] = 0  # γ(1) = 0 already gives this; guard against schedules that miss it
    return counts


# ---- guidance schedules ----------------------------------------------------------------------
# Classifier-free guidance need not be one scale for the whole sampling call. "linear" is MAR's
# cfg_schedule (Li et al. 2024): the scale grows with the share of tokens already decided,
# 1 + (cfg - 1) · progress, so the first steps (which lay out the scene) sample the conditional
# model unguided and keep its variety, and the last ones (detail inside a fixed layout) get the
# full scale. "falling" runs the other way, cfg down to 1: the layout is guided towards the asked
# class, the detail drawn inside it comes from the conditional model unguided. Measured on the
# shipped maskgit (session 14, 48 samples at 1024², cfg 3): linear FD 13.96 against constant 6.44,
# falling 6.41 (three seeds: 6.41 / 7.48 / 8.05). The scale matters, the schedule did not here;
# constant stays the default.
GUIDANCE_SCHEDULES = ("constant", "linear", "falling")


def check_guidance_schedule(name: str) -> str:
    """``name`` if it is a guidance schedule, else a `NarError` listing the known ones."""
    if name not in GUIDANCE_SCHEDULES:
        raise NarError(f"unknown guidance schedule {name!r}; known: {', '.join(GUIDANCE_SCHEDULES)}")
    return name


def guidance_scale(cfg_scale: float, progress: float, schedule: str = "constant", start: float = 0.0) -> float:
    """The guidance scale of a sampling step taken when ``progress`` (0..1) of the work is done:
    for maskgit the share of generated tokens already fixed, for sundae the share of steps run.
    Steps before ``start`` are unguided (scale 1: guidance in a limited interval, Kynkäänniemi et al.
    2024), and cost one forward branch instead of two."""
    schedule = check_guidance_schedule(schedule)   # a bad name is refused on unguided steps too
    if progress < start:
        return 1.0
    if schedule == "constant":
        return cfg_scale
    progress = min(max(progress, 0.0), 1.0)
    return 1.0 + (cfg_scale - 1.0) * (progress if schedule == "linear" else 1.0 - progress)


# ---- temperature ramps -----------------------------------------------------------------------
# sundae anneals its temperature over the steps (SUNDAE's sampler); maskgit can ramp its token
# temperature the same way (`temperature_end`). Both take the end as an absolute last-step
# temperature when the caller gives one, and their configs state it as a multiple of the start.
def temperature_ramp(steps: int, start: float, end: float | None = None, end_multiple: float | None = None
                     ) -> list[float]:
    """Per-step sampling temperatures, linear from ``start`` at the first step to the last step's:
    ``end`` when given (absolute), else ``end_multiple`` × start (a config's setting, stated for a
    start of 1, so a cooler start such as inpainting's ends proportionally cooler), else ``start``
    (constant). A start of 0 is greedy throughout."""
    if start == 0:
        return [0.0] * steps
    if end is None:
        end = start * (1.0 if end_multiple is None else end_multiple)
    if steps == 1:
        return [float(start)]
    return [start + (end - start) * t / (steps - 1) for t in range(steps)]
