"""Canvas and light: normalised coordinates, colours, and the lighting of each time of day."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np




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


