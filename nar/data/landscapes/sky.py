"""The sky: gradient, clouds, stars, sun or moon."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nar.data.landscapes.noise import _Fbm, _hash01, _smoothstep
from nar.data.landscapes.light import _Canvas, _keys, _lerp_, _Light, _mix, _rgb


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


