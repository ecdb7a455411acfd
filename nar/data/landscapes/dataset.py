"""The public API: `generate_landscape`, `LandscapeDataset`, `make_dataset_folder`."""
from __future__ import annotations

import csv
import json
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from einops import reduce
from PIL import Image
from torch.utils.data import Dataset

from nar.core.errors import NarError
from nar.core.images import array_to_tensor
from nar.core.progress import progress_bar
from nar.data.landscapes.light import _Canvas, _jittered_light
from nar.data.landscapes.scenes import (_SCENE_PAINTERS, _TIME_WEIGHTS, MAX_SIZE, MIN_SIZE, SCENES, TIMES_OF_DAY,
                                        _time_id, scene_id)

# Marks a folder written by make_dataset_folder, so that it may be written again.
_FOLDER_MARKER = "nar-landscapes"


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
                       time_of_day: str | None = None, supersample: int = 1) -> tuple[np.ndarray, dict]:
    """Paint one landscape.

    Returns an (height, width, 3) uint8 image and its label
    ``{"scene", "scene_id", "time_of_day", "seed"}``. The scene and time of day are drawn
    from the seed unless given; forcing one keeps every other choice of the seed.
    Any size from 16 to 4096 pixels per side works; 64 to 2048 is what it is designed for.

    ``supersample=k`` paints the scene at k x the size and box-averages each k x k block
    (rounded to uint8): an anti-aliased render with the detail of the k x render, so that
    ``generate_landscape(s, w, h, supersample=2)`` is exactly the 2x render averaged down.
    A plain render leaves out noise octaves finer than its pixels and samples edges at pixel
    centres, so it is *not* the 2x render averaged down (31-40 dB apart at 1024²).
    """
    width, height, supersample = int(width), int(height), int(supersample)
    for name, value in (("width", width), ("height", height)):
        if not MIN_SIZE <= value <= MAX_SIZE:
            raise NarError(
                f"landscape {name} must be between {MIN_SIZE} and {MAX_SIZE}, got {value}")
    if supersample != 1:
        if supersample < 1 or max(width, height) * supersample > MAX_SIZE:
            raise NarError(f"supersample must be >= 1 with size x supersample <= {MAX_SIZE}, "
                           f"got {supersample} at {width}x{height}")
        fine, label = generate_landscape(seed, width * supersample, height * supersample, scene, time_of_day)
        return box_average(fine, supersample), label
    rng, label = _start(seed, scene, time_of_day)
    cv = _Canvas(width, height)
    light = _jittered_light(label["time_of_day"], rng)
    img = np.empty((3, height, width), np.float32)
    _SCENE_PAINTERS[label["scene"]](img, cv, light, rng)
    img *= 255.0
    img += 0.5
    np.clip(img, 0.0, 255.0, out=img)
    return np.ascontiguousarray(img.astype(np.uint8).transpose(1, 2, 0)), label


def box_average(image: np.ndarray, factor: int) -> np.ndarray:
    """(H·f, W·f, 3) uint8 -> (H, W, 3) uint8: the mean of every f x f block, rounded."""
    mean = reduce(image.astype(np.float32), "(h fh) (w fw) c -> h w c", "mean", fh=factor, fw=factor)
    return np.clip(mean + 0.5, 0, 255).astype(np.uint8)


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
    with progress_bar(progress, total=n, desc=f"landscapes → {out}") as advance:
        for i in range(n):
            image, label = generate_landscape(_item_seed(seed, i), size, size)
            name = f"{i:06d}.png"
            Image.fromarray(image).save(out / name)
            rows.append({"file": name, **label})
            advance(i + 1)
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
