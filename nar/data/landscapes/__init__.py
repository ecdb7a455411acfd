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

Modules, bottom up: `noise` (hashed value noise, fBm), `light` (canvas, colours, light per
time of day), `sky`, `terrain` (ridges, hills, trees, dunes, water), `scenes` (the six
painters and the scene names), `dataset` (this public API).
"""
from nar.data.landscapes.dataset import (LandscapeDataset, generate_landscape, landscape_label,
                                         make_dataset_folder)
from nar.data.landscapes.scenes import MAX_SIZE, MIN_SIZE, SCENES, TIMES_OF_DAY, scene_id

__all__ = ["SCENES", "TIMES_OF_DAY", "MIN_SIZE", "MAX_SIZE", "scene_id", "landscape_label", "generate_landscape",
           "LandscapeDataset", "make_dataset_folder"]
