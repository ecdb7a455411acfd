"""Procedural landscapes: the embedded default dataset.

``generate_landscape(seed, width, height)`` paints a landscape (sky, sun or moon,
clouds, stars, terrain, water, buildings) with vectorised numpy. It is how nar works
out of the box and how tests get real-looking images without downloads.

Two properties matter downstream:

* **Deterministic.** Everything random comes from ``np.random.default_rng(seed)``
  (scene parameters) and from integer hashes keyed by numbers drawn from it (noise
  lattices, lit windows, stars). Same seed and size give identical bytes.
* **Resolution independent.** Geometry lives in normalised coordinates: y runs from 0
  (top) to 1 (bottom), x from 0 to width/height, one unit is the image height. Noise is
  value noise on hashed lattices fixed in those coordinates; each octave is added only
  when the image has enough pixels to show it. So a seed rendered at 256² and at
  1024² shows the same scene, the larger one with finer texture. This is what lets a
  tokenizer trained on 256² crops work on 1024² images.
"""

from __future__ import annotations

import csv
import json
import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from nar.core.errors import NarError
from nar.core.images import array_to_tensor

SCENES: tuple[str, ...] = ("mountains", "lake", "coast", "desert", "forest", "city")
TIMES_OF_DAY: tuple[str, ...] = ("day", "sunset", "night", "golden_hour", "dusk")
# How often each time of day is drawn when the caller does not choose one.
_TIME_WEIGHTS = np.array([0.36, 0.16, 0.18, 0.16, 0.14])

MIN_SIZE = 16
MAX_SIZE = 4096

# Marks a folder written by make_dataset_folder, so that it may be written again.
_FOLDER_MARKER = "nar-landscapes"


def scene_id(name: str) -> int:
    """Index of a scene name in ``SCENES``."""
    try:
        return SCENES.index(name)
    except ValueError:
        raise NarError(f"unknown scene {name!r}; known scenes: {', '.join(SCENES)}") from None


def _time_id(name: str) -> int:
    try:
        return TIMES_OF_DAY.index(name)
    except ValueError:
        raise NarError(
            f"unknown time of day {name!r}; known: {', '.join(TIMES_OF_DAY)}"
        ) from None


# --------------------------------------------------------------------------------------
# Noise: hashed value noise and fBm in normalised coordinates
# --------------------------------------------------------------------------------------


def _hash01(ix: np.ndarray, iy: np.ndarray, key: int) -> np.ndarray:
    """A float32 in [0, 1) for every integer lattice point; a pure function of (ix, iy, key)."""
    h = ix.astype(np.uint32) * np.uint32(0x27D4EB2D)
    h = h ^ (iy.astype(np.uint32) * np.uint32(0x165667B1))  # (not in place: may broadcast)
    h ^= np.uint32(key & 0xFFFFFFFF)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    h *= np.uint32(0x297A2D39)
    h ^= h >> np.uint32(15)
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def _lattice_coords(coords: np.ndarray, freq: float, offset: float):
    """Lower lattice index and smoothstep weight of each coordinate."""
    t = coords.astype(np.float64) * freq + offset
    i0 = np.floor(t)
    f = (t - i0).astype(np.float32)
    return i0.astype(np.int64), f * f * (3.0 - 2.0 * f)


class _Fbm:
    """Fractal value noise: octaves of smoothly interpolated hashed lattices.

    ``grid(u, v, du, dv)`` evaluates on the outer product of two coordinate vectors
    (separable, so it costs a few passes over the image per octave); ``line(u, du)``
    evaluates a 1-D profile. ``du``/``dv`` are the size of one pixel in noise
    coordinates: octaves finer than a few pixels are left out, which is what makes the
    same call resolution independent. Amplitudes are normalised over ``octaves`` so
    adding fine octaves at high resolution does not rescale the coarse ones.
    Output is roughly in [-1, 1] (``ridged``: in [0, 1], sharp creases at the top).
    """

    def __init__(self, key: int, freq: float, octaves: int = 7, gain: float = 0.5,
                 ridged: bool = False, min_cell_px: float = 2.5):
        self.key = int(key)
        self.freq = float(freq)
        self.octaves = octaves
        self.gain = gain
        self.ridged = ridged
        self.min_cell_px = min_cell_px
        self.norm = sum(gain**k for k in range(octaves))

    def _octaves(self, pixel: float):
        for k in range(self.octaves):
            freq = self.freq * 2.0**k
            if k > 0 and freq * pixel * self.min_cell_px > 1.0:
                break
            key = (self.key + 0x9E3779B9 * (k + 1)) & 0xFFFFFFFF
            # An irrational per-octave shift keeps lattice points of octaves apart.
            offset = 17.0 + 0.618034 * 37 * k
            yield freq, key, offset, self.gain**k / self.norm

    def _shape(self, n: np.ndarray) -> np.ndarray:
        if self.ridged:
            r = 1.0 - np.abs(2.0 * n - 1.0)
            return r * r
        return 2.0 * n - 1.0

    def line(self, u: np.ndarray, du: float) -> np.ndarray:
        out = np.zeros(u.shape, np.float32)
        for freq, key, offset, amp in self._octaves(du):
            i0, w = _lattice_coords(u, freq, offset)
            lo = i0.min()
            lat = _hash01(np.arange(lo, i0.max() + 2), np.zeros(1, np.int64), key)
            a = lat[i0 - lo]
            b = lat[i0 - lo + 1]
            out += amp * self._shape(a + (b - a) * w)
        return out

    def grid(self, u: np.ndarray, v: np.ndarray, du: float, dv: float) -> np.ndarray:
        out = np.zeros((v.shape[0], u.shape[0]), np.float32)
        tmp = np.empty_like(out)  # reused: large temporaries cost more than the maths
        total = 0.0
        for freq, key, offset, amp in self._octaves(max(du, dv)):
            ix, wx = _lattice_coords(u, freq, offset)
            iy, wy = _lattice_coords(v, freq, offset * 1.37)
            x0, y0 = ix.min(), iy.min()
            lat = _hash01(np.arange(x0, ix.max() + 2)[None, :],
                          np.arange(y0, iy.max() + 2)[:, None], key)
            if not self.ridged:
                lat *= 2.0 * amp  # scale the few lattice values, not the many pixels
                total += amp
            # Interpolate along x on the (coarse) lattice rows, then along y per pixel:
            # value = rows[jy] + (rows[jy + 1] - rows[jy]) * wy.
            jx = ix - x0
            left = np.take(lat, jx, axis=1)
            rows = np.ascontiguousarray(left + (np.take(lat, jx + 1, axis=1) - left) * wx)
            steps = np.diff(rows, axis=0)
            jy = iy - y0
            wy = wy[:, None]
            if self.ridged:
                val = rows[jy]
                val += steps[jy] * wy
                out += amp * self._shape(val)
            else:
                out += rows[jy]
                np.multiply(steps[jy], wy, out=tmp)
                out += tmp
        if not self.ridged:
            out -= total  # 2 * n - 1, applied once instead of per octave
        return out


def _smoothstep(e0: float, e1: float, x):
    t = np.subtract(x, e0, dtype=np.float32)
    t *= 1.0 / (e1 - e0)
    np.clip(t, 0.0, 1.0, out=t)
    square = t * t
    t *= -2.0
    t += 3.0
    t *= square
    return t


def _pulse_coverage(x: np.ndarray, period, duty, width: float) -> np.ndarray:
    """Box-filtered square wave (1 on the first ``duty`` fraction of each period).

    Averaged analytically over a pixel of ``width``, so window grids look the same at
    every resolution: crisp when large, the right average grey when sub-pixel.
    """
    def integral(t):
        cycles = np.floor(t / period)
        return cycles * duty * period + np.minimum(t - cycles * period, duty * period)

    half = 0.5 * width
    return ((integral(x + half) - integral(x - half)) / width).astype(np.float32)


# --------------------------------------------------------------------------------------
# Canvas and light
#
# Images are painted channel-first, (3, H, W) float32 in [0, 1]: numpy is several times
# faster broadcasting a (3, 1, 1) colour over planes than over a trailing axis of 3.
# --------------------------------------------------------------------------------------


@dataclass
class _Canvas:
    """Pixel-centre coordinates of the image in normalised units (1 unit = height)."""

    width: int
    height: int

    def __post_init__(self):
        self.px = 1.0 / self.height
        self.aspect = self.width / self.height
        self.xs = ((np.arange(self.width) + 0.5) * self.px).astype(np.float32)
        self.ys = ((np.arange(self.height) + 0.5) * self.px).astype(np.float32)

    def row(self, y: float) -> int:
        """Index of the first row that can be touched by something starting at height y."""
        return int(min(max(math.floor(y * self.height - 0.5), 0), self.height))

    def box_blur(self, line: np.ndarray, width: float) -> np.ndarray:
        """Moving average over ``width`` normalised units (resolution independent)."""
        n = max(1, int(round(width / self.px)))
        if n == 1:
            return line
        padded = np.pad(line.astype(np.float64), n, mode="edge")
        return np.convolve(padded, np.full(n, 1.0 / n), mode="same")[n:-n].astype(np.float32)


def _rgb(r: float, g: float, b: float) -> np.ndarray:
    """A colour shaped (3, 1, 1), ready to broadcast over (3, H, W)."""
    return np.array([r, g, b], np.float32).reshape(3, 1, 1)


def _lerp_(dst: np.ndarray, color: np.ndarray, t) -> None:
    """In place: ``dst += (color - dst) * t`` for a (3, h, w) image ``dst``.

    Works one channel at a time, so temporaries are one plane, not three: numpy is much
    faster reusing small buffers than allocating image-sized ones.
    """
    tmp = np.empty(dst.shape[1:], np.float32)
    for c in range(3):
        np.subtract(color[c], dst[c], out=tmp)
        tmp *= t
        dst[c] += tmp


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """New image ``a + (b - a) * t``; ``a``/``b`` colours or images, ``t`` (h, w)."""
    out = np.empty((3,) + np.broadcast_shapes(a.shape[1:], b.shape[1:], t.shape), np.float32)
    out[:] = a
    _lerp_(out, b, t)
    return out


@dataclass
class _Light:
    """Colours and sun/moon set-up of one time of day, jittered per image."""

    sky_top: np.ndarray
    sky_horizon: np.ndarray
    haze: np.ndarray          # colour distant terrain fades to
    glow: np.ndarray          # halo around the sun and along the horizon under it
    glow_strength: float
    sun_color: np.ndarray
    direct: np.ndarray        # colour of direct sun/moon light on terrain
    ambient: np.ndarray       # colour of sky light on terrain
    cloud_lit: np.ndarray
    cloud_shade: np.ndarray
    water: np.ndarray
    body: str                 # "sun", "moon" or "none" (sun below the horizon)
    body_height: tuple[float, float]  # range, as a fraction of the sky above the horizon
    body_radius: float
    stars: float              # 0 = none, 1 = full night sky
    windows_lit: float        # fraction of city windows lit
    night: bool


_LIGHTS = {
    "day": dict(
        sky_top=_rgb(0.16, 0.38, 0.76), sky_horizon=_rgb(0.66, 0.8, 0.93),
        haze=_rgb(0.64, 0.75, 0.86), glow=_rgb(1.0, 0.98, 0.9), glow_strength=0.25,
        sun_color=_rgb(1.0, 0.99, 0.93), direct=_rgb(1.0, 0.97, 0.9),
        ambient=_rgb(0.42, 0.47, 0.56), cloud_lit=_rgb(1.0, 1.0, 1.0),
        cloud_shade=_rgb(0.66, 0.71, 0.8), water=_rgb(0.08, 0.27, 0.42), body="sun",
        body_height=(0.45, 0.85), body_radius=0.028, stars=0.0, windows_lit=0.0,
        night=False),
    "golden_hour": dict(
        sky_top=_rgb(0.25, 0.42, 0.72), sky_horizon=_rgb(0.98, 0.82, 0.58),
        haze=_rgb(0.88, 0.76, 0.6), glow=_rgb(1.0, 0.85, 0.55), glow_strength=0.5,
        sun_color=_rgb(1.0, 0.93, 0.7), direct=_rgb(1.0, 0.8, 0.55),
        ambient=_rgb(0.36, 0.36, 0.46), cloud_lit=_rgb(1.0, 0.9, 0.72),
        cloud_shade=_rgb(0.58, 0.52, 0.6), water=_rgb(0.12, 0.25, 0.36), body="sun",
        body_height=(0.14, 0.32), body_radius=0.032, stars=0.0, windows_lit=0.05,
        night=False),
    "sunset": dict(
        sky_top=_rgb(0.2, 0.2, 0.44), sky_horizon=_rgb(1.0, 0.52, 0.24),
        haze=_rgb(0.78, 0.46, 0.38), glow=_rgb(1.0, 0.62, 0.28), glow_strength=0.8,
        sun_color=_rgb(1.0, 0.84, 0.5), direct=_rgb(0.95, 0.5, 0.3),
        ambient=_rgb(0.26, 0.2, 0.32), cloud_lit=_rgb(1.0, 0.56, 0.34),
        cloud_shade=_rgb(0.34, 0.24, 0.38), water=_rgb(0.12, 0.14, 0.26), body="sun",
        body_height=(-0.02, 0.1), body_radius=0.04, stars=0.0, windows_lit=0.25,
        night=False),
    "dusk": dict(
        sky_top=_rgb(0.05, 0.08, 0.24), sky_horizon=_rgb(0.62, 0.38, 0.5),
        haze=_rgb(0.34, 0.28, 0.42), glow=_rgb(0.95, 0.5, 0.45), glow_strength=0.45,
        sun_color=_rgb(0.0, 0.0, 0.0), direct=_rgb(0.3, 0.25, 0.4),
        ambient=_rgb(0.18, 0.17, 0.3), cloud_lit=_rgb(0.62, 0.4, 0.55),
        cloud_shade=_rgb(0.16, 0.15, 0.28), water=_rgb(0.05, 0.07, 0.16), body="none",
        body_height=(-0.3, -0.1), body_radius=0.0, stars=0.25, windows_lit=0.5,
        night=True),
    "night": dict(
        sky_top=_rgb(0.01, 0.02, 0.07), sky_horizon=_rgb(0.07, 0.11, 0.24),
        haze=_rgb(0.08, 0.1, 0.2), glow=_rgb(0.7, 0.75, 0.9), glow_strength=0.12,
        sun_color=_rgb(0.93, 0.93, 0.86), direct=_rgb(0.28, 0.33, 0.48),
        ambient=_rgb(0.11, 0.13, 0.22), cloud_lit=_rgb(0.24, 0.27, 0.36),
        cloud_shade=_rgb(0.06, 0.07, 0.12), water=_rgb(0.02, 0.04, 0.09), body="moon",
        body_height=(0.35, 0.8), body_radius=0.022, stars=1.0, windows_lit=0.6,
        night=True),
}


def _jittered_light(time_of_day: str, rng: np.random.Generator) -> _Light:
    base = _LIGHTS[time_of_day]
    # One tint for the whole image keeps the palette coherent; the sky colours get
    # small independent shifts on top.
    tint = _rgb(*(1.0 + rng.uniform(-0.06, 0.06, 3) + rng.uniform(-0.08, 0.08)))
    fields = {}
    for name, value in base.items():
        if isinstance(value, np.ndarray):
            value = value * tint
            if name.startswith("sky"):
                value = value * _rgb(*(1.0 + rng.uniform(-0.07, 0.07, 3)))
            value = np.clip(value, 0.0, 1.0)
        fields[name] = value
    return _Light(**fields)


def _keys(rng: np.random.Generator, n: int) -> list[int]:
    return [int(k) for k in rng.integers(0, 2**32, size=n, dtype=np.uint64)]


# --------------------------------------------------------------------------------------
# Sky
# --------------------------------------------------------------------------------------


@dataclass
class _Sky:
    horizon: float       # normalised y where the sky meets the ground or the sea
    sun_x: float
    sun_y: float
    cloudiness: float    # 0 clear .. 1 overcast
    light_side: float    # +1 when the sun is right of centre, -1 when left


def _make_sky(cv: _Canvas, light: _Light, rng, horizon: float, cloudiness: float,
              body_base: float | None = None) -> _Sky:
    """Place the sun or moon; ``body_base`` is the line its height is measured from."""
    base = horizon if body_base is None else body_base
    x = float(rng.uniform(0.15, 0.85) * cv.aspect)
    lo, hi = light.body_height
    y = float(base * (1.0 - rng.uniform(lo, hi)))
    return _Sky(horizon, x, y, cloudiness, 1.0 if x > 0.5 * cv.aspect else -1.0)


def _paint_sky(img: np.ndarray, cv: _Canvas, light: _Light, sky: _Sky, rng,
               bottom: float) -> None:
    """Sky gradient, glow, stars, sun or moon and clouds on the rows above ``bottom``.

    Rows below are filled with the horizon colour; terrain is expected to cover them.
    """
    r1 = min(cv.height, cv.row(bottom) + 2)
    ys = cv.ys[:r1]
    xs = cv.xs
    h = sky.horizon
    key_clouds, key_stars, key_moon = _keys(rng, 3)
    gamma = rng.uniform(1.6, 2.6)
    cloud_freq = rng.uniform(1.5, 3.0)
    cloud_stretch = rng.uniform(2.5, 4.5)
    cloud_edge = rng.uniform(0.06, 0.2)  # softness of cloud edges
    stars_per_unit = int(rng.integers(250, 500))

    img[:, r1:] = light.sky_horizon
    # Vertical gradient: zenith colour above, horizon colour near the horizon.
    t = np.clip(ys / h, 0.0, 1.0) ** gamma
    out = img[:, :r1]  # painted in place
    out[:] = light.sky_top + (light.sky_horizon - light.sky_top) * t[None, :, None]

    # Glow: a broad halo around the sun plus a warm band along the horizon below it.
    dx = (xs - sky.sun_x)[None, :]
    dy = (ys - sky.sun_y)[:, None]
    dist = np.sqrt(dx * dx + dy * dy)
    near_horizon = np.clip(1.0 - np.abs(ys - h) / 0.35, 0.0, 1.0)[:, None] ** 2
    glow = light.glow_strength * (0.5 * np.exp(-dist / 0.12)
                                  + 0.4 * near_horizon * np.exp(-(dx / 0.5) ** 2))
    _lerp_(out, light.glow, glow)

    if light.stars > 0:
        _paint_stars(out, cv, light, sky, key_stars, stars_per_unit)

    if light.body != "none":
        _paint_sun_or_moon(out, cv, light, sky, dist, key_moon)

    if sky.cloudiness > 0.02:
        # Clouds flatten towards the horizon: a perspective warp of y compresses
        # the rows of noise near it.
        ysky = np.minimum(ys, h)
        v = cloud_stretch * 0.25 / (h + 0.08 - ysky)
        dv = cloud_stretch * 0.25 / 0.3**2 * cv.px  # pixel size in v at mid-sky
        density = _Fbm(key_clouds, cloud_freq, octaves=8, gain=0.6).grid(xs, v, cv.px, dv)
        threshold = 0.35 - 0.75 * sky.cloudiness
        cover = _smoothstep(threshold, threshold + cloud_edge, density)
        cover *= np.clip((h - ys) / 0.03, 0.0, 1.0)[:, None]
        # Lighting: compare the density with a copy shifted towards the light; where
        # the cloud thickens towards the light, the near side is in shadow.
        shift = max(1, int(round(0.012 * cv.height)))
        toward = np.empty_like(density)
        if light.body == "none" or sky.sun_y < h * 0.6:
            toward[shift:] = density[:-shift]  # light from above: undersides shaded
            toward[:shift] = density[:1]
        else:
            toward[:-shift] = density[shift:]  # low sun: undersides lit
            toward[-shift:] = density[-1:]
        lit = np.clip(0.6 - 2.5 * (toward - density), 0.0, 1.0)
        if light.body != "moon":
            lit = np.clip(lit + np.exp(-dist / 0.25) * min(1.0, light.glow_strength * 1.5),
                          0.0, 1.0)
        color = _mix(light.cloud_shade, light.cloud_lit, lit)
        cover *= 0.94
        _lerp_(out, color, cover)


def _paint_stars(out, cv, light, sky, key, per_unit):
    """Stars: fixed points in normalised coordinates, each adding its area's light."""
    n = int(per_unit * cv.aspect * light.stars)
    idx = np.arange(n)
    sx = _hash01(idx, np.full(n, 1), key) * cv.aspect
    sy = _hash01(idx, np.full(n, 2), key) * sky.horizon
    bright = 0.25 + 0.75 * _hash01(idx, np.full(n, 3), key) ** 6
    radius = 0.0008 + 0.0012 * _hash01(idx, np.full(n, 4), key) ** 3
    # A star smaller than a pixel adds light in proportion to its area, so the
    # starfield looks the same after downsampling.
    energy = bright * np.minimum(1.0, math.pi * (radius / cv.px) ** 2)
    energy *= np.clip((sky.horizon - sy) / 0.15, 0.0, 1.0)  # lost in the horizon haze
    col = np.clip((sx / cv.px).astype(np.int64), 0, cv.width - 1)
    row = np.clip((sy / cv.px).astype(np.int64), 0, out.shape[1] - 1)
    layer = np.zeros(out.shape[1:], np.float32)
    np.add.at(layer, (row, col), energy.astype(np.float32))
    _lerp_(out, _rgb(1.0, 0.97, 0.9), np.clip(layer, 0, 1))


def _paint_sun_or_moon(out, cv, light, sky, dist, key):
    """The disk (anti-aliased edge) and its close halo, painted in a box around it."""
    radius = light.body_radius
    halo_width = 0.015 if light.body == "sun" else 0.03
    reach = radius + 6 * halo_width  # the halo is below 1/255 beyond this
    r0 = cv.row(sky.sun_y - reach)
    r1 = min(out.shape[1], cv.row(sky.sun_y + reach) + 2)
    c0 = max(0, int((sky.sun_x - reach) / cv.px) - 2)
    c1 = min(cv.width, int((sky.sun_x + reach) / cv.px) + 3)
    if r1 <= r0 or c1 <= c0:
        return
    box = out[:, r0:r1, c0:c1]
    dist = dist[r0:r1, c0:c1]
    halo = (0.6 if light.body == "sun" else 0.15) * min(1.0, light.glow_strength + 0.3)
    _lerp_(box, light.sun_color, halo * np.exp(-np.maximum(dist - radius, 0) / halo_width))
    disk = np.clip((radius - dist) / cv.px + 0.5, 0.0, 1.0)
    color = light.sun_color
    if light.body == "moon":  # faint maria
        spots = _Fbm(key, 1.5 / radius, octaves=3).grid(
            cv.xs[c0:c1], cv.ys[r0:r1], cv.px, cv.px)
        color = color * (0.9 + 0.1 * spots)[None]
    _lerp_(box, color, disk)


# --------------------------------------------------------------------------------------
# Terrain helpers
# --------------------------------------------------------------------------------------


def _coverage(profile: np.ndarray, ys: np.ndarray, px: float) -> np.ndarray:
    """Anti-aliased mask of the pixels below a profile y(x): sharp at any resolution."""
    return np.clip((ys[:, None] - profile[None, :]) / px + 0.5, 0.0, 1.0)


def _blend_rows(img: np.ndarray, r0: int, alpha: np.ndarray, color: np.ndarray) -> None:
    """Paint ``color`` over rows r0.. of ``img`` with coverage ``alpha`` (h, w)."""
    _lerp_(img[:, r0:r0 + alpha.shape[0]], color, alpha)


def _shade(albedo: np.ndarray, light: _Light, lit: np.ndarray, haze: float = 0.0
           ) -> np.ndarray:
    """Colour of a surface: ``albedo`` under sky light plus direct light weighted by
    ``lit`` (h, w) in [0, 1], faded by ``haze`` towards the haze colour (aerial
    perspective: far things are paler). ``albedo``: a colour (3, 1, 1), per column
    (3, 1, w) or per pixel (3, h, w).
    """
    keep = 1.0 - haze
    out = np.empty((3,) + np.broadcast_shapes(lit.shape, albedo.shape[1:]), np.float32)
    for c in range(3):
        direct = float(light.direct[c, 0, 0]) * keep
        ambient = float(light.ambient[c, 0, 0]) * keep
        fog = float(light.haze[c, 0, 0]) * haze
        a = albedo[c]
        if a.size == 1:  # a plain colour folds into two passes
            a = float(a.reshape(()))
            np.multiply(lit, a * direct, out=out[c])
            out[c] += a * ambient + fog
        else:
            np.multiply(lit, direct, out=out[c])
            out[c] += ambient
            out[c] *= a
            out[c] += fog
    return out


def _rows(cv: _Canvas, top: float, bottom: float) -> tuple[int, int]:
    """Row range a layer must paint: from its highest point to where it is hidden."""
    return cv.row(top), min(cv.height, cv.row(bottom) + 2)


def _ridge_profile(cv, key, base: float, amplitude: float, freq: float, roughness: float,
                   ridged: bool = True) -> np.ndarray:
    """y of a ridge line for every column (smaller y = higher); spans [base-amplitude, base]."""
    height = _Fbm(key, freq, octaves=11, gain=roughness, ridged=ridged).line(cv.xs, cv.px)
    if ridged:
        # Stretch to the full range so each range has both summits and passes.
        lo, hi = np.percentile(height, 2), height.max()
        height = np.clip((height - lo) / max(1e-6, hi - lo), 0.0, 1.0)
    else:
        height = 0.5 + 0.5 * height
    return (base - amplitude * height).astype(np.float32)


def _crest_facing(cv: _Canvas, profile: np.ndarray, blur: float, gain: float) -> np.ndarray:
    """Which way each column of a ridge faces: -1 left, +1 right (from the crest slope).

    A left flank rises to the right (its y decreases with x), so its slope is negative.
    """
    slope = np.gradient(cv.box_blur(profile, blur)) / cv.px
    return np.tanh(gain * slope).astype(np.float32)


def _mountain_layer(img, cv, light, sky, profile, rock, distance, key, bottom=1.0,
                    snow_line=None, vegetation=None, rock_freq=6.0):
    """A mountain range below ``profile``.

    Gullies and spurs run down the fall lines from the crest: a vertically stretched
    ridged noise is sheared sideways under each flank, then lit from the sun's side.
    """
    r0, r1 = _rows(cv, float(profile.min()), bottom)
    if r1 <= r0:
        return
    ys = cv.ys[r0:r1]
    k_rock, k_snow, k_green = key, (key * 7 + 3) & 0xFFFFFFFF, (key * 13 + 5) & 0xFFFFFFFF
    below = np.maximum(ys[:, None] - profile[None, :], 0.0)
    facing = _crest_facing(cv, profile, 0.03, 1.2)
    # Shear: a point `below` under the crest on a left flank (facing -1) belongs to the
    # fall line that starts further right, so look the noise up there.
    shift = np.rint(-facing[None, :] * below * (0.9 / cv.px)).astype(np.int64)
    cols = np.clip(np.arange(cv.width)[None, :] + shift, 0, cv.width - 1)
    rock_field = _Fbm(k_rock, rock_freq, octaves=7, gain=0.5, ridged=True)
    field = rock_field.grid(cv.xs, ys * 0.5, cv.px, 0.5 * cv.px)
    field = np.take_along_axis(field, cols, axis=1)
    face = facing[cols]
    # Bump lighting from the field's horizontal slope: the left side of a spur rises
    # to the right (positive slope) and faces left.
    bump = np.zeros_like(field)
    bump[:, 1:-1] = (field[:, 2:] - field[:, :-2]) * (0.01 / cv.px)
    side = sky.light_side
    lit = 0.5 + 0.3 * side * face - 1.2 * side * bump + 0.25 * (field - 0.4)
    albedo = rock
    if vegetation is not None or snow_line is not None:
        albedo = np.empty((3,) + lit.shape, np.float32)
        albedo[:] = rock
    # Tree line and snow line are altitude lines made ragged by one blotchy field; each
    # is only worked out on the rows it can reach.
    blotchy = _Fbm(k_green, 8.0, octaves=6)
    if vegetation is not None:
        green_color, green_line = vegetation
        g0 = max(0, cv.row(green_line - 0.13) - r0)
        if g0 < len(ys):
            yg = ys[g0:]
            blotches = blotchy.grid(cv.xs, yg, cv.px, cv.px)
            trees = _Fbm(k_snow, 60.0, octaves=4, gain=0.6).grid(cv.xs, yg * 1.5, cv.px,
                                                                1.5 * cv.px)
            # Gullies let the forest reach higher, spurs push it down.
            green = _smoothstep(0.0, 0.006, yg[:, None] - green_line + 0.07 * blotches
                                + 0.08 * (0.4 - field[g0:]) + 0.006 * trees)
            canopy = 0.35 * lit[g0:] + 0.2 + 0.1 * blotches + 0.3 * trees  # gullies show
            lit[g0:] += green * (canopy - lit[g0:])
            _lerp_(albedo[:, g0:], green_color, green)
    if snow_line is not None:
        s1 = min(len(ys), cv.row(snow_line + 0.1) + 1 - r0)
        if s1 > 0:
            ysn = ys[:s1]
            line = snow_line + 0.04 * blotchy.grid(cv.xs, ysn, cv.px, cv.px) + 0.08 * (
                field[:s1] - 0.4)
            snow = _smoothstep(0.008, -0.008, ysn[:, None] - line)
            snow *= np.clip(1.5 * lit[:s1] - 0.1, 0, 1)  # less snow on dark steep faces
            _lerp_(albedo[:, :s1], _rgb(1.0, 1.0, 1.0), snow)
            lit[:s1] += snow * 0.15
    color = _shade(albedo, light, np.clip(lit, 0.0, 1.0), haze=distance)
    _blend_rows(img, r0, _coverage(profile, ys, cv.px), color)


def _hill_layer(img, cv, light, sky, profile, albedo, distance, key, bottom=1.0,
                texture_freq=12.0, contrast=0.3):
    """Soft rolling land: meadows, plains, near shores."""
    r0, r1 = _rows(cv, float(profile.min()), bottom)
    if r1 <= r0:
        return
    ys = cv.ys[r0:r1]
    tex = _Fbm(key, texture_freq, octaves=9).grid(cv.xs, ys * 2.5, cv.px, 2.5 * cv.px)
    facing = _crest_facing(cv, profile, 0.02, 2.0)
    below = ys[:, None] - profile[None, :]
    crest = np.exp(-np.maximum(below, 0) / 0.06) * facing[None, :] * sky.light_side
    lit = np.clip(0.5 + contrast * crest + 0.2 * tex, 0, 1)
    color = _shade(albedo, light, lit, haze=distance)
    _blend_rows(img, r0, _coverage(profile, ys, cv.px), color)


def _tree_profile(cv, key, base: np.ndarray, spacing: float, height: float,
                  conifer_share: float) -> np.ndarray:
    """Add a row of tree crowns (tiered conifers and round broadleaves) to a profile."""
    cell = cv.xs / spacing
    k0 = np.floor(cell).astype(np.int64)
    crowns = np.zeros_like(cv.xs)
    for dk in (-1, 0, 1):  # a crown may overhang into the neighbouring cells
        k = k0 + dk
        rand = [_hash01(k, np.full_like(k, j), key) for j in range(4)]
        centre = k + 0.2 + 0.6 * rand[0]
        conifer = rand[3] < conifer_share
        # Conifers: tall narrow spikes whose flanks step in at each branch tier.
        # Broadleaves: lower, wider round crowns.
        tall = height * (0.6 + 0.4 * rand[1]) * np.where(conifer, 1.0, 0.4)
        half_width = np.where(conifer, 0.28 + 0.17 * rand[2], 0.6 + 0.35 * rand[2])
        d = np.abs(cell - centre) / half_width
        level = np.clip(1.0 - d, 0, None)
        tiers = 6.0
        pointed = level - 0.45 * (level * tiers - np.floor(level * tiers)) / tiers
        rounded = np.sqrt(np.clip(1.0 - d * d, 0, None))
        crowns = np.maximum(crowns, tall * np.where(conifer, pointed, rounded) * (d < 1))
    jag = _Fbm(key ^ 0x5BD1E995, 6.0 / spacing, octaves=4).line(cv.xs, cv.px)
    return (base - crowns - 0.06 * height * jag * (crowns > 0)).astype(np.float32)


def _forest_layer(img, cv, light, sky, profile, albedo, distance, key, spacing, bottom=1.0,
                  mist=0.0):
    """Trees below a crown profile: clumpy canopy, lit rims on the sun side, valley mist."""
    r0, r1 = _rows(cv, float(profile.min()), bottom)
    if r1 <= r0:
        return
    ys = cv.ys[r0:r1]
    freq = 1.0 / spacing
    canopy = _Fbm(key, freq * 1.2, octaves=7, gain=0.6).grid(cv.xs, ys * 1.5, cv.px,
                                                             1.5 * cv.px)
    # Vertical streaks: the shadowed gaps between trunks.
    streaks = _Fbm((key * 3 + 1) & 0xFFFFFFFF, freq * 1.5, octaves=3).line(cv.xs, cv.px)
    facing = _crest_facing(cv, profile, 0.1 * spacing, 1.5)
    below = ys[:, None] - profile[None, :]
    rim = np.exp(-np.maximum(below, 0) / (0.4 * spacing)) * facing[None, :] * sky.light_side
    lit = np.clip(0.36 + 0.3 * canopy + 0.3 * rim + 0.12 * streaks[None, :], 0, 1)
    color = _shade(albedo, light, lit, haze=distance)
    if mist > 0:  # fog pooling in the valley under the layer
        depth_in = np.maximum(below - 1.5 * spacing, 0)
        _lerp_(color, light.haze, mist * _smoothstep(0.0, 0.1, depth_in))
    _blend_rows(img, r0, _coverage(profile, ys, cv.px), color)


# --------------------------------------------------------------------------------------
# Water
# --------------------------------------------------------------------------------------


def _paint_water(img, cv, light, sky, top: float, key, calm: float, source=None,
                 glitter: float = 0.0) -> None:
    """Water from the line ``top`` down: a rippled mirror of what is above it.

    Row y mirrors row 2*top - y of ``source`` (default: the image painted so far).
    Ripples are horizontal streaks that get thinner towards the horizon; they displace
    the mirror lookup and brighten or darken the surface.
    """
    r0 = cv.row(top)
    if r0 >= cv.height:
        return
    src = img if source is None else source
    ys = cv.ys[r0:]
    depth = np.maximum(ys - top, 0.0) + 0.003  # distance below the horizon line
    v = np.log(depth) * 10.0  # perspective: equal steps in log-depth
    dv = 10.0 * cv.px / 0.1
    k1, k2 = key, (key * 5 + 11) & 0xFFFFFFFF
    ripple = _Fbm(k1, 1.0, octaves=7, gain=0.55).grid(cv.xs * 3.0, v, 3.0 * cv.px, dv)
    fine = _Fbm(k2, 6.0, octaves=5, gain=0.6).grid(cv.xs * 12.0, v * 3.0, 12 * cv.px, 3 * dv)
    rough = 1.0 - calm
    near = np.clip(depth / 0.4, 0, 1)[:, None]
    # Mirror lookup, displaced by the ripples (more in rough water and near the viewer).
    offset = (0.004 + 0.05 * rough * near) * (0.7 * ripple + 0.5 * fine)
    mirror_y = 2.0 * top - ys[:, None] + offset
    src_rows = np.clip(np.floor(mirror_y / cv.px).astype(np.int64), 0, max(r0 - 1, 0))
    lookup = src_rows * cv.width + np.arange(cv.width)[None, :]
    # Grazing angles (near the horizon) reflect more; near the viewer the water shows.
    reflect = 0.88 - 0.4 * near
    brightness = 1.0 + (0.1 + 0.25 * rough) * fine + 0.1 * rough * ripple
    color = np.empty((3,) + lookup.shape, np.float32)
    flat_src = src.reshape(3, -1)
    for c in range(3):
        np.take(flat_src[c], lookup, out=color[c])
        color[c] *= reflect
        color[c] += float(light.water[c, 0, 0]) * (1.0 - reflect)
        color[c] *= brightness
    if glitter > 0 and light.body != "none":
        # Sun or moon path: bright flecks on wave crests in a column under the body.
        spread = 0.03 + 0.2 * near
        column = np.exp(-((cv.xs[None, :] - sky.sun_x) / spread) ** 2)
        flecks = _smoothstep(0.2, 0.6, fine + 0.4 * ripple) * column * glitter
        _lerp_(color, light.sun_color, flecks)
    cover = np.clip((ys - top) / cv.px + 0.5, 0, 1)[:, None]
    _blend_rows(img, r0, np.broadcast_to(cover, (ys.size, cv.width)), color)


# --------------------------------------------------------------------------------------
# Scenes: each paints into img (3, H, W) and returns nothing
# --------------------------------------------------------------------------------------


def _scene_mountains(img, cv, light, rng):
    """Snowy ridged ranges fading into the distance, a wooded foothill, often a meadow."""
    horizon = rng.uniform(0.56, 0.7)   # the valley floor seen far away
    peak = rng.uniform(0.16, 0.32)     # highest summits
    sky = _make_sky(cv, light, rng, horizon, rng.uniform(0.0, 0.7), body_base=peak + 0.05)
    keys = _keys(rng, 16)
    n_ranges = int(rng.integers(2, 4))
    rock = np.array([_rgb(0.46, 0.44, 0.45), _rgb(0.5, 0.42, 0.35), _rgb(0.4, 0.42, 0.46)])[
        rng.integers(0, 3)] * rng.uniform(0.85, 1.15)
    green = np.array([_rgb(0.2, 0.32, 0.13), _rgb(0.14, 0.26, 0.12)])[rng.integers(0, 2)]
    roughness = rng.uniform(0.4, 0.52)
    snow_line = peak + rng.uniform(0.02, 0.12)
    tree_line = horizon - rng.uniform(0.04, 0.12)
    profiles = []
    for i in range(n_ranges):
        near = i / n_ranges  # 0 = farthest range
        top = peak + (horizon - peak) * 0.45 * near * rng.uniform(0.8, 1.1)
        base = horizon + 0.03 * near
        freq = rng.uniform(0.9, 1.8) / (1 + 0.3 * i)
        profiles.append(_ridge_profile(cv, keys[i], base, base - top, freq, roughness))
    # A wooded foothill in front, crowned with trees.
    hill = _ridge_profile(cv, keys[4], rng.uniform(0.8, 0.9), rng.uniform(0.05, 0.12),
                          rng.uniform(0.6, 1.4), 0.5, ridged=False)
    spacing = rng.uniform(0.008, 0.016)
    foothill = _tree_profile(cv, keys[5], hill, spacing, spacing * rng.uniform(1.8, 3.0),
                             rng.uniform(0.5, 1.0))
    meadow = rng.random() < 0.65
    ground = _ridge_profile(cv, keys[6], rng.uniform(0.88, 0.97), rng.uniform(0.02, 0.06),
                            rng.uniform(0.6, 1.2), 0.5, ridged=False)
    profiles.append(foothill)
    _paint_sky(img, cv, light, sky, rng, float(profiles[0].max()))
    for i in range(n_ranges):
        near = i / n_ranges
        _mountain_layer(img, cv, light, sky, profiles[i], rock, 0.6 * (1 - near) ** 1.5 + 0.05,
                        keys[8 + i], bottom=float(profiles[i + 1].max()),
                        snow_line=snow_line,
                        vegetation=(green, tree_line + 0.04 * near) if near > 0 else None,
                        rock_freq=rng.uniform(4.0, 7.0))
    _forest_layer(img, cv, light, sky, foothill, green * 0.8, 0.1, keys[12], spacing,
                  bottom=float(ground.max()) if meadow else 1.0, mist=rng.uniform(0, 0.12))
    if meadow:
        _hill_layer(img, cv, light, sky, ground, green * rng.uniform(1.1, 1.5), 0.0, keys[14],
                    texture_freq=10.0, contrast=0.3)


def _scene_lake(img, cv, light, rng):
    """Far hills or mountains and a tree line, mirrored in calm water; sometimes a near shore."""
    horizon = rng.uniform(0.5, 0.66)  # the far shore, where the water starts
    sky = _make_sky(cv, light, rng, horizon, rng.uniform(0.0, 0.7), body_base=horizon - 0.1)
    keys = _keys(rng, 10)
    # Far shore: hills or mountains, then a dark tree line right at the water.
    hill_top = horizon - rng.uniform(0.08, 0.26)
    rock = _rgb(0.4, 0.41, 0.43) * rng.uniform(0.85, 1.15)
    green = _rgb(0.14, 0.26, 0.12) * rng.uniform(0.8, 1.2)
    far = _ridge_profile(cv, keys[0], horizon, horizon - hill_top, rng.uniform(1.0, 2.2),
                         rng.uniform(0.42, 0.55))
    shore = _ridge_profile(cv, keys[2], horizon + 0.002, rng.uniform(0.01, 0.06),
                           rng.uniform(1.0, 2.5), 0.5, ridged=False)
    trees = _tree_profile(cv, keys[3], shore, rng.uniform(0.005, 0.011),
                          rng.uniform(0.012, 0.03), rng.uniform(0.3, 0.95))
    _paint_sky(img, cv, light, sky, rng, horizon)
    _mountain_layer(img, cv, light, sky, far, rock, 0.45, keys[1], bottom=float(trees.max()),
                    snow_line=hill_top + 0.04 if rng.random() < 0.4 else None,
                    vegetation=(green, hill_top + rng.uniform(0.03, 0.12)))
    _forest_layer(img, cv, light, sky, trees, green, 0.2, keys[4], 0.008,
                  bottom=horizon + 0.003)
    _paint_water(img, cv, light, sky, horizon, keys[5], rng.uniform(0.55, 0.95), glitter=0.3)
    if rng.random() < 0.55:  # a near shore of grass and stones along the bottom edge
        near_shore = _ridge_profile(cv, keys[6], rng.uniform(0.93, 1.02),
                                    rng.uniform(0.04, 0.12), rng.uniform(0.7, 1.5), 0.55,
                                    ridged=False)
        _hill_layer(img, cv, light, sky, near_shore,
                    _rgb(0.3, 0.36, 0.18) * rng.uniform(0.8, 1.2), 0.0, keys[7],
                    texture_freq=20.0)


def _scene_coast(img, cv, light, rng):
    """Open sea to a flat horizon, sometimes a headland; waves, sun glitter, foam, beach."""
    horizon = rng.uniform(0.38, 0.55)  # flat sea horizon
    sky = _make_sky(cv, light, rng, horizon, rng.uniform(0.0, 0.6))
    keys = _keys(rng, 10)
    headland = rng.random() < 0.6
    from_left = rng.random() < 0.5
    reach = rng.uniform(0.2, 0.5)
    cliff_height = rng.uniform(0.05, 0.16)
    _paint_sky(img, cv, light, sky, rng, horizon)
    sky_only = img.copy()  # the sea reflects the sky, not the headland
    if headland:  # a ridge on one side that falls off towards the open sea
        t = (cv.xs if from_left else cv.aspect - cv.xs) / (reach * cv.aspect)
        envelope = np.clip(1.0 - t, 0, 1) ** 0.6
        cliff = _ridge_profile(cv, keys[0], horizon, cliff_height, 2.5, 0.5)
        cliff = np.where(envelope > 0, horizon - (horizon - cliff) * envelope, horizon + 0.01)
        _mountain_layer(img, cv, light, sky, cliff.astype(np.float32),
                        _rgb(0.42, 0.4, 0.32), 0.4, keys[1], bottom=horizon + 0.004,
                        vegetation=(_rgb(0.2, 0.3, 0.14), horizon - 0.6 * cliff_height))
    _paint_water(img, cv, light, sky, horizon, keys[2], rng.uniform(0.1, 0.45),
                 source=sky_only, glitter=0.6)
    # The open sea is a deeper colour than its reflection near the viewer.
    r0 = cv.row(horizon)
    depth = cv.ys[r0:] - horizon
    sea = light.water * _rgb(0.85, 1.05, 1.1)
    _blend_rows(img, r0, np.broadcast_to((0.35 * np.clip(depth / 0.4, 0, 1))[:, None],
                                         (depth.size, cv.width)), sea)
    _paint_beach(img, cv, light, horizon, keys[3:8], rng)


def _paint_beach(img, cv, light, horizon, keys, rng):
    """Sand below a wavy shoreline, a wet strip, foam on the water line and a breaker."""
    shore_y = horizon + rng.uniform(0.25, 0.45) * (1 - horizon)
    tilt = rng.uniform(-0.15, 0.15)
    sand = np.array([_rgb(0.86, 0.76, 0.56), _rgb(0.8, 0.72, 0.6), _rgb(0.9, 0.82, 0.66)])[
        rng.integers(0, 3)] * rng.uniform(0.9, 1.06)
    shore = (shore_y + tilt * (cv.xs / cv.aspect - 0.5)
             + 0.03 * _Fbm(keys[0], 1.5, octaves=7).line(cv.xs, cv.px)).astype(np.float32)
    r0 = cv.row(float(shore.min()) - 0.07)
    ys = cv.ys[r0:]
    below = ys[:, None] - shore[None, :]
    grain = _Fbm(keys[1], 30.0, octaves=6).grid(cv.xs, ys * 2, cv.px, 2 * cv.px)
    swash = 0.015 + 0.012 * _Fbm(keys[2], 3.0, octaves=6).line(cv.xs, cv.px)
    sand_color = _shade(sand, light, np.clip(0.62 + 0.1 * grain, 0, 1))
    wet_color = _shade(sand * 0.72, light, np.clip(0.55 + 0.05 * grain, 0, 1))
    ground = _mix(sand_color, wet_color, _smoothstep(0.01, 0.0, below - swash[None, :]))
    _blend_rows(img, r0, np.clip(below / cv.px + 0.5, 0, 1), ground)
    # Foam: a lacy band on the water line plus a breaking wave further out.
    foam_color = _shade(_rgb(0.97, 0.97, 0.96), light, np.full((1, 1), 0.85, np.float32))
    lace = _Fbm(keys[3], 18.0, octaves=7, gain=0.6).grid(cv.xs, ys * 3, cv.px, 3 * cv.px)
    band = _smoothstep(-0.014, 0.0, below) * _smoothstep(0.006, 0.0, below)
    foam = np.clip(band * (0.6 + 1.2 * lace), 0, 1)
    breaker_y = 0.045 + 0.025 * _Fbm(keys[4], 2.0, octaves=5).line(cv.xs, cv.px)
    crest = _smoothstep(0.01, 0.0, np.abs(below + breaker_y[None, :]))
    foam = np.maximum(foam, np.clip(crest * (0.2 + 0.9 * lace), 0, 1) * (below < 0))
    _blend_rows(img, r0, foam.astype(np.float32), foam_color)


def _dune_profile(cv, key, base, amplitude, freq):
    """Dune crests: asymmetric ridges (gentle windward slope, steep lee side)."""
    n = _Fbm(key, freq, octaves=9, gain=0.45).line(cv.xs, cv.px)
    warp = _Fbm(key ^ 0x1234567, freq * 0.5, octaves=2).line(cv.xs, cv.px)
    t = cv.xs * freq * 1.3 + 0.6 * warp + 0.2 * n
    saw = t - np.floor(t)
    shape = np.where(saw < 0.75, saw / 0.75, (1.0 - saw) / 0.25) ** 1.5
    return (base - amplitude * (0.65 * shape + 0.35 * (0.5 + 0.5 * n))).astype(np.float32)


def _dune_layer(img, cv, light, sky, profile, sand, distance, key, bottom=1.0):
    """Dunes: lit and shadowed faces split by an edge running down from each crest."""
    r0, r1 = _rows(cv, float(profile.min()), bottom)
    if r1 <= r0:
        return
    ys = cv.ys[r0:r1]
    facing = _crest_facing(cv, profile, 0.004, 4.0)
    below = np.maximum(ys[:, None] - profile[None, :], 0)
    # The shadow edge leans away from the crest as it runs down: look the facing up a
    # little towards the sun from each pixel (a shear).
    cols = np.clip(np.arange(cv.width)[None, :]
                   - np.rint(sky.light_side * 0.8 * below / cv.px).astype(np.int64),
                   0, cv.width - 1)
    face = facing[cols] * sky.light_side * np.exp(-below / 0.3)
    wobble = _Fbm(key, 4.0, octaves=7).grid(cv.xs, ys * 2.0, cv.px, 2 * cv.px)
    # Wind ripples: fine, box-filtered stripes (average out when smaller than a pixel).
    ripple_freq = 160.0
    ripples = _pulse_coverage(ys[:, None] * ripple_freq + 4.0 * wobble, 1.0, 0.5,
                              ripple_freq * cv.px) - 0.5
    lit = np.clip(0.55 + 0.4 * face + 0.1 * wobble + 0.1 * ripples * (1 - distance), 0, 1)
    color = _shade(sand, light, lit, haze=distance)
    _blend_rows(img, r0, _coverage(profile, ys, cv.px), color)


def _scene_desert(img, cv, light, rng):
    """Rows of asymmetric dunes with lit and shadowed faces, sometimes mesas; clear sky."""
    horizon = rng.uniform(0.5, 0.66)
    sky = _make_sky(cv, light, rng, horizon, rng.uniform(0.0, 0.25) ** 1.5)
    keys = _keys(rng, 12)
    sand = np.array([_rgb(0.88, 0.66, 0.42), _rgb(0.92, 0.74, 0.5), _rgb(0.8, 0.52, 0.32)])[
        rng.integers(0, 3)] * rng.uniform(0.9, 1.08)
    mesas = rng.random() < 0.5
    mesa_height = rng.uniform(0.03, 0.09)
    n_layers = int(rng.integers(3, 5))
    profiles = []
    for i in range(n_layers):
        near = i / (n_layers - 1)
        base = horizon + 0.01 + (1.0 - horizon) * 0.55 * near ** 1.4
        amp = 0.03 + 0.15 * near * rng.uniform(0.6, 1.2)
        freq = rng.uniform(0.8, 1.6) / (1 + near)
        profiles.append(_dune_profile(cv, keys[2 + i], base, amp, freq))
    _paint_sky(img, cv, light, sky, rng, max(horizon + 0.01, float(profiles[0].max())))
    if mesas:  # flat-topped buttes on the horizon
        t = _Fbm(keys[0], 2.0, octaves=4).line(cv.xs, cv.px)
        mesa = horizon + 0.01 - mesa_height * _smoothstep(0.05, 0.12, t)
        _mountain_layer(img, cv, light, sky, mesa.astype(np.float32), sand * 0.75, 0.5,
                        keys[1], bottom=float(profiles[0].max()), rock_freq=3.0)
    for i in range(n_layers):
        near = i / (n_layers - 1)
        bottom = float(profiles[i + 1].max()) if i + 1 < n_layers else 1.0
        _dune_layer(img, cv, light, sky, profiles[i], sand, 0.5 * (1 - near) ** 1.5,
                    keys[7 + i], bottom=bottom)


def _scene_forest(img, cv, light, rng):
    """Receding rows of tree-covered hills, hazier and misty with distance."""
    horizon = rng.uniform(0.42, 0.6)
    sky = _make_sky(cv, light, rng, horizon, rng.uniform(0.0, 0.7), body_base=horizon - 0.1)
    keys = _keys(rng, 16)
    green = np.array([_rgb(0.12, 0.26, 0.12), _rgb(0.16, 0.3, 0.1), _rgb(0.1, 0.22, 0.16)])[
        rng.integers(0, 3)] * rng.uniform(0.85, 1.2)
    conifers = rng.uniform(0.3, 1.0)
    mist = rng.uniform(0.0, 0.8)
    n_layers = int(rng.integers(3, 6))
    layers = []
    for i in range(n_layers):
        near = i / (n_layers - 1)
        base = horizon + (1.0 - horizon) * (0.04 + 0.7 * near ** 1.3)
        hill = _ridge_profile(cv, keys[i], base, rng.uniform(0.05, 0.14) * (0.6 + near),
                              rng.uniform(0.8, 1.8), 0.5, ridged=False)
        spacing = 0.005 + 0.04 * near ** 1.6
        height = spacing * rng.uniform(2.0, 3.2)
        layers.append((_tree_profile(cv, keys[5 + i], hill, spacing, height, conifers), spacing))
    _paint_sky(img, cv, light, sky, rng, float(layers[0][0].max()))
    for i, (trees, spacing) in enumerate(layers):
        near = i / (n_layers - 1)
        bottom = float(layers[i + 1][0].max()) if i + 1 < n_layers else 1.0
        _forest_layer(img, cv, light, sky, trees, green, 0.7 * (1 - near) ** 1.2,
                      keys[10 + i], spacing, bottom=bottom, mist=mist * (1 - 0.7 * near))


def _scene_city(img, cv, light, rng):
    """A skyline in depth layers with window grids (lit at night); a river or a street."""
    horizon = rng.uniform(0.6, 0.78)  # street level of the skyline
    sky = _make_sky(cv, light, rng, horizon, rng.uniform(0.0, 0.6), body_base=horizon - 0.2)
    keys = _keys(rng, 8)
    waterfront = rng.random() < 0.45
    _paint_sky(img, cv, light, sky, rng, horizon)
    n_layers = int(rng.integers(2, 4))
    tallest = rng.uniform(0.25, 0.45) * horizon
    for i in range(n_layers):
        near = i / (n_layers - 1)
        _skyline_layer(img, cv, light, sky, rng, horizon + 0.002,
                       tallest * (0.5 + 0.5 * near), width_scale=0.6 + 0.6 * near,
                       distance=0.55 * (1 - near), key=keys[i])
    if waterfront:
        _paint_water(img, cv, light, sky, horizon + 0.002, keys[4], rng.uniform(0.4, 0.85),
                     glitter=0.15)
    else:
        _paint_street(img, cv, light, sky, horizon, _keys(rng, 5), rng)


def _skyline_layer(img, cv, light, sky, rng, ground, max_height, width_scale, distance, key):
    """Rectangular buildings with set-backs, spires and window grids."""
    # Lay out buildings left to right (a loop over buildings, never over pixels).
    blocks = []  # (x0, x1, top_y, building index)
    x = -rng.uniform(0.0, 0.05)
    b = 0
    while x < cv.aspect:
        w = rng.uniform(0.03, 0.09) * width_scale
        height = max_height * rng.uniform(0.25, 1.0) ** 1.6
        if rng.random() < 0.12:
            height = max_height * rng.uniform(0.85, 1.0)  # a tower
        blocks.append((x, x + w, ground - height, b))
        if rng.random() < 0.4:  # set-back: a narrower top section
            inset = w * rng.uniform(0.15, 0.3)
            blocks.append((x + inset, x + w - inset, ground - height * rng.uniform(1.1, 1.3), b))
        if rng.random() < 0.15:  # spire or antenna
            mid = x + w * rng.uniform(0.4, 0.6)
            half = max(0.0015, w * 0.04)
            blocks.append((mid - half, mid + half, ground - height * rng.uniform(1.3, 1.6), b))
        x += w + rng.uniform(-0.01, 0.012) * width_scale
        b += 1
    n_buildings = b
    building_left = np.zeros(n_buildings, np.float32)
    building_width = np.zeros(n_buildings, np.float32)
    for x0, x1, _, bid in blocks:
        if building_width[bid] == 0:  # a building's first block is its full body
            building_left[bid], building_width[bid] = x0, x1 - x0
    tone = rng.uniform(0.5, 1.0, n_buildings).astype(np.float32)
    material = rng.integers(0, len(_FACADES), n_buildings)
    floor_h = (rng.uniform(0.006, 0.012, n_buildings) * width_scale).astype(np.float32)
    win_w = (rng.uniform(0.004, 0.008, n_buildings) * width_scale).astype(np.float32)
    lit_share = (light.windows_lit * rng.uniform(0.5, 1.3, n_buildings)).astype(np.float32)

    # Rasterise: per column, the top of the tallest block there and its building.
    profile = np.full(cv.width, 2.0, np.float32)  # 2.0: below the image, i.e. sky
    owner = np.zeros(cv.width, np.int64)
    for x0, x1, top, bid in blocks:
        c0 = max(0, int(math.floor(x0 / cv.px + 0.5)))
        c1 = min(cv.width, int(math.floor(x1 / cv.px + 0.5)))
        if c1 <= c0:
            continue
        higher = top < profile[c0:c1]
        profile[c0:c1] = np.where(higher, top, profile[c0:c1])
        owner[c0:c1] = np.where(higher, bid, owner[c0:c1])
    r0, r1 = _rows(cv, float(profile.min()), ground)
    ys = cv.ys[r0:r1]

    # Window grid, aligned to the left wall and the ground of each building.
    local_x = cv.xs - building_left[owner]
    from_ground = (ground - ys)[:, None]
    pitch_x = win_w[owner] * 1.8
    pitch_y = floor_h[owner][None, :]
    window = (_pulse_coverage(from_ground - 0.3 * pitch_y, pitch_y, 0.55, cv.px)
              * _pulse_coverage(local_x - 0.3 * pitch_x, pitch_x, 0.55, cv.px)[None, :])
    # Which windows are lit: a hash of (building, window column, floor).
    wc = np.floor(local_x / pitch_x).astype(np.int64)[None, :]
    wr = np.floor(from_ground / pitch_y).astype(np.int64)
    lit = (_hash01(owner[None, :] * 1024 + wc, wr, key) < lit_share[owner][None, :])
    cool = _hash01(wr, owner[None, :] * 512 + wc, key ^ 0xABCDEF) < 0.25

    # Walls: a narrow side wall on the sun side of each building catches the light.
    rel = local_x / building_width[owner]
    side_wall = (rel > 0.82) if sky.light_side > 0 else (rel < 0.18)
    facade = _FACADES[material[owner]].T[:, None, :] * (0.6 + 0.4 * tone[owner])  # (3, 1, W)
    if light.night:
        facade = facade * 0.25
    wall_lit = (np.where(side_wall, 0.85, 0.45) + 0.1 * tone[owner]).astype(np.float32)
    wall = _shade(facade.astype(np.float32), light, wall_lit[None, :])
    glass = _rgb(0.05, 0.06, 0.09) if light.night else (
        light.sky_horizon * 0.55 + light.sky_top * 0.25)
    lamp = np.where(cool[None], _rgb(0.9, 0.92, 1.0), _rgb(1.0, 0.8, 0.45))
    window_color = np.where(lit[None], lamp, glass)
    haze = distance * (0.4 if light.night else 1.0)
    color = _mix(wall, window_color, window)
    color += (light.haze - color) * haze
    _blend_rows(img, r0, _coverage(profile, ys, cv.px), color)


# Wall colours: concrete, sandstone, brick, blue glass, dark glass.
_FACADES = np.array([[0.56, 0.57, 0.6], [0.7, 0.64, 0.52], [0.55, 0.34, 0.26],
                     [0.42, 0.55, 0.68], [0.28, 0.31, 0.36]], np.float32)


def _paint_street(img, cv, light, sky, horizon, keys, rng):
    """Foreground below the skyline: a row of park trees, a pavement and a road."""
    r0 = cv.row(horizon)
    ys = cv.ys[r0:]
    below = (ys - horizon)[:, None]
    park = rng.uniform(0.03, 0.07)         # depth of the grass strip with trees
    pavement = park + rng.uniform(0.02, 0.04)
    lane = pavement + (1.0 - horizon - pavement) * rng.uniform(0.3, 0.5)
    dash = rng.uniform(0.04, 0.08)
    tex = _Fbm(keys[0], 10.0, octaves=8).grid(cv.xs, ys * 3.0, cv.px, 3.0 * cv.px)
    # Ground: grass, pavement, asphalt, each with its own texture strength.
    lit = 0.5 + 0.12 * tex
    grass = _smoothstep(park + 0.002, park, below)
    walk = _smoothstep(pavement + 0.002, pavement, below) - grass
    albedo = _mix(_rgb(0.24, 0.24, 0.25), _rgb(0.5, 0.5, 0.5), np.broadcast_to(walk, lit.shape))
    _lerp_(albedo, _rgb(0.14, 0.24, 0.1), grass)
    # Dashed centre line of the road: box-filtered dashes, crisp at any resolution.
    dashes = _pulse_coverage(cv.xs, dash, 0.5, cv.px)[None, :] * _pulse_coverage(
        below - lane, 1.0, 0.004, cv.px)
    _lerp_(albedo, _rgb(0.85, 0.85, 0.8), dashes)
    color = _shade(albedo, light, np.clip(lit, 0, 1))
    cover = np.broadcast_to(np.clip(below / cv.px + 0.5, 0, 1), lit.shape)
    _blend_rows(img, r0, cover, color)
    # Round park trees in front of the buildings' feet.
    spacing = rng.uniform(0.015, 0.03)
    base = horizon + 0.8 * park + 0.005 * _Fbm(keys[1], 3.0, octaves=3).line(cv.xs, cv.px)
    trees = _tree_profile(cv, keys[2], base.astype(np.float32), spacing,
                          spacing * rng.uniform(2.0, 3.0), conifer_share=0.15)
    _forest_layer(img, cv, light, sky, trees, _rgb(0.12, 0.22, 0.09), 0.05, keys[3], spacing,
                  bottom=horizon + park)
    if light.night:  # street lamps along the pavement
        phase = 6.28 * float(_hash01(np.zeros(1, np.int64), np.zeros(1, np.int64), keys[4])[0])
        lamps = (0.5 + 0.5 * np.cos(cv.xs * (2 * math.pi / 0.06) + phase)) ** 12
        band = np.exp(-((below[:, 0] - pavement + 0.004) / 0.006) ** 2)
        _blend_rows(img, r0, np.clip(band[:, None] * lamps[None, :] * 1.5, 0, 1),
                    _rgb(1.0, 0.8, 0.45))


_SCENE_PAINTERS = {
    "mountains": _scene_mountains,
    "lake": _scene_lake,
    "coast": _scene_coast,
    "desert": _scene_desert,
    "forest": _scene_forest,
    "city": _scene_city,
}


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def _start(seed: int, scene: str | None, time_of_day: str | None):
    """The seed's generator after its first two draws, and the resolved label."""
    rng = np.random.default_rng(seed)
    # Always draw both choices, so that forcing one leaves every later draw unchanged.
    drawn_scene = SCENES[int(rng.integers(len(SCENES)))]
    drawn_time = TIMES_OF_DAY[int(rng.choice(len(TIMES_OF_DAY), p=_TIME_WEIGHTS))]
    scene = drawn_scene if scene is None else scene
    time_of_day = drawn_time if time_of_day is None else time_of_day
    label = {"scene": scene, "scene_id": scene_id(scene), "time_of_day": time_of_day,
             "seed": int(seed)}
    _time_id(time_of_day)
    return rng, label


def landscape_label(seed: int, scene: str | None = None,
                    time_of_day: str | None = None) -> dict:
    """The label ``generate_landscape`` would return for this seed, without painting."""
    return _start(seed, scene, time_of_day)[1]


def generate_landscape(seed: int, width: int, height: int, scene: str | None = None,
                       time_of_day: str | None = None) -> tuple[np.ndarray, dict]:
    """Paint one landscape.

    Returns an (height, width, 3) uint8 image and its label
    ``{"scene", "scene_id", "time_of_day", "seed"}``. The scene and time of day are drawn
    from the seed unless given; forcing one keeps every other choice of the seed.
    Any size from 16 to 4096 pixels per side works; 64 to 2048 is what it is designed for.
    """
    width, height = int(width), int(height)
    for name, value in (("width", width), ("height", height)):
        if not MIN_SIZE <= value <= MAX_SIZE:
            raise NarError(
                f"landscape {name} must be between {MIN_SIZE} and {MAX_SIZE}, got {value}")
    rng, label = _start(seed, scene, time_of_day)
    cv = _Canvas(width, height)
    light = _jittered_light(label["time_of_day"], rng)
    img = np.empty((3, height, width), np.float32)
    _SCENE_PAINTERS[label["scene"]](img, cv, light, rng)
    img *= 255.0
    img += 0.5
    np.clip(img, 0.0, 255.0, out=img)
    return np.ascontiguousarray(img.astype(np.uint8).transpose(1, 2, 0)), label


def _item_seed(seed: int, index: int) -> int:
    return int(seed) * 1_000_003 + int(index)


class LandscapeDataset(Dataset):
    """``n`` procedural landscapes, rendered on the fly (nothing is stored on disk).

    Item ``i`` is ``generate_landscape(seed * 1_000_003 + i, ...)``, so datasets with
    different seeds are (nearly) disjoint and the same (seed, i) always gives the same
    image. ``size`` is an int or ``(height, width)``. With ``crop``, the image is rendered
    at ``size`` and a ``crop`` x ``crop`` window is cut at a position fixed by (seed, i):
    the way to train on 256² crops of 1024² scenes. With ``scenes``, item ``i`` shows
    ``scenes[i % len(scenes)]`` (balanced classes); otherwise the seed picks the scene.

    Returns ``(x, label)``: x a float32 tensor (3, H, W) in [-1, 1], label the scene id.
    ``cache=True`` keeps the last ``cache_size`` items in memory (per worker process).
    """

    def __init__(self, n: int, size: int | tuple[int, int], seed: int = 0,
                 crop: int | None = None, scenes: Sequence[str] | None = None,
                 cache: bool = False, cache_size: int = 512):
        if n < 0:
            raise NarError(f"dataset size must be >= 0, got {n}")
        self.n = int(n)
        self.height, self.width = (size, size) if isinstance(size, int) else map(int, size)
        if crop is not None and not 0 < crop <= min(self.height, self.width):
            raise NarError(f"crop {crop} does not fit in a {self.height}x{self.width} image")
        self.seed = int(seed)
        self.crop = crop
        self.scenes = None if scenes is None else tuple(scenes)
        if self.scenes is not None:
            if not self.scenes:
                raise NarError("scenes must name at least one scene")
            for name in self.scenes:
                scene_id(name)
        self.cache_size = cache_size if cache else 0
        self._cache: OrderedDict[int, tuple[torch.Tensor, int]] = OrderedDict()

    def __len__(self) -> int:
        return self.n

    def scene_of(self, index: int) -> str | None:
        """The scene forced for item ``index`` (None: the seed chooses)."""
        return None if self.scenes is None else self.scenes[index % len(self.scenes)]

    def label(self, index: int) -> dict:
        """Label dict of item ``index``, without rendering it."""
        return landscape_label(_item_seed(self.seed, index), self.scene_of(index))

    def crop_box(self, index: int) -> tuple[int, int] | None:
        """(top, left) of item ``index``'s crop, or None without cropping."""
        if self.crop is None:
            return None
        rng = np.random.default_rng([abs(self.seed), int(index), 0xC0])
        top = int(rng.integers(0, self.height - self.crop + 1))
        left = int(rng.integers(0, self.width - self.crop + 1))
        return top, left

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} landscapes")
        index = index % self.n
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        image, label = generate_landscape(_item_seed(self.seed, index), self.width,
                                          self.height, scene=self.scene_of(index))
        box = self.crop_box(index)
        if box is not None:
            top, left = box
            image = image[top:top + self.crop, left:left + self.crop]
        item = (array_to_tensor(image), label["scene_id"])
        if self.cache_size:
            self._cache[index] = item
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return item


def make_dataset_folder(out: Path, n: int, size: int, seed: int,
                        progress: bool = True) -> Path:
    """Write ``n`` landscapes as ``out/000000.png ...`` with ``labels.json`` and ``labels.csv``.

    Image ``i`` is item ``i`` of ``LandscapeDataset(n, size, seed)``. ``labels.json`` is
    a list of label dicts with a "file" key. Writing into a non-empty folder is refused
    unless nar wrote it before (it then holds ``dataset.json``); files of the earlier
    run that this one does not rewrite are removed, nothing else is touched.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NarError(f"{out} exists and is not a folder")
    meta_path = out / "dataset.json"
    earlier: list[str] = []
    if out.is_dir() and any(out.iterdir()):
        meta = _read_json(meta_path)
        if not isinstance(meta, dict) or meta.get("generator") != _FOLDER_MARKER:
            raise NarError(f"{out} is not empty and was not written by nar; "
                           "choose an empty or new folder")
        old_labels = _read_json(out / "labels.json")
        if isinstance(old_labels, list):
            earlier = [row["file"] for row in old_labels
                       if isinstance(row, dict) and isinstance(row.get("file"), str)]
    out.mkdir(parents=True, exist_ok=True)

    rows = []
    with _progress(progress) as bar:
        task = bar.add_task(f"landscapes → {out}", total=n) if bar else None
        for i in range(n):
            image, label = generate_landscape(_item_seed(seed, i), size, size)
            name = f"{i:06d}.png"
            Image.fromarray(image).save(out / name)
            rows.append({"file": name, **label})
            if bar:
                bar.advance(task)
    written = {row["file"] for row in rows}
    for name in earlier:  # left over from a larger earlier run
        stale = out / name
        if name not in written and stale.parent == out and stale.is_file():
            stale.unlink()

    (out / "labels.json").write_text(json.dumps(rows, indent=1))
    with open(out / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "scene", "scene_id", "time_of_day", "seed"])
        writer.writeheader()
        writer.writerows(rows)
    meta_path.write_text(json.dumps({"generator": _FOLDER_MARKER, "n": n, "size": size,
                                     "seed": seed, "scenes": list(SCENES)}, indent=1))
    return out


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class _NoProgress:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _progress(enabled: bool):
    if not enabled:
        return _NoProgress()
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeRemainingColumn)

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn())
