"""The six scenes (mountains, lake, coast, desert, forest, city): each paints into an image
(3, H, W) float32 in [0, 1]; and the scene / time-of-day names."""
from __future__ import annotations

import math

import numpy as np

from nar.core.errors import NarError
from nar.data.landscapes.noise import _Fbm, _hash01, _pulse_coverage, _smoothstep
from nar.data.landscapes.light import _keys, _lerp_, _mix, _rgb
from nar.data.landscapes.sky import _make_sky, _paint_sky
from nar.data.landscapes.terrain import (_blend_rows, _coverage, _crest_facing, _forest_layer, _hill_layer,
                                         _mountain_layer, _paint_water, _ridge_profile, _rows, _shade,
                                         _tree_profile)


SCENES: tuple[str, ...] = ("mountains", "lake", "coast", "desert", "forest", "city")
TIMES_OF_DAY: tuple[str, ...] = ("day", "sunset", "night", "golden_hour", "dusk")
# How often each time of day is drawn when the caller does not choose one.
_TIME_WEIGHTS = np.array([0.36, 0.16, 0.18, 0.16, 0.14])

MIN_SIZE = 16
MAX_SIZE = 4096


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


