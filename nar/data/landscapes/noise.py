"""Noise for the procedural landscapes: hashed value noise and fBm in normalised coordinates."""
from __future__ import annotations

import numpy as np




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


