"""Terrain and water: ridge, hill, tree and dune profiles, their shading, and reflective water."""
from __future__ import annotations

import numpy as np

from nar.data.landscapes.noise import _Fbm, _hash01, _smoothstep
from nar.data.landscapes.light import _Canvas, _lerp_, _Light, _rgb


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


