"""A folder of real images as a training set, with the spec's cleaning.

Every candidate file (.jpg/.jpeg/.png/.webp, any case, any depth) is opened and fully
decoded once at scan time. Files that cannot be read, and images whose shorter side is
below ``min_size``, are skipped and counted, never fatal: ``summary()`` says what was
kept and why the rest was not. Items are resized (shorter side to ``size``) and cropped
to size×size.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

import torch
from PIL import Image
from torch.utils.data import Dataset

from nar.core.errors import NarError
from nar.core.images import load_image, to_tensor
from nar.core.progress import progress_bar
from nar.data.transforms import resize_shorter_side

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
UNREADABLE = "unreadable"
TOO_SMALL = "too small"
# Folders this large show a progress bar while they are checked.
_PROGRESS_FROM = 1000


def find_images(root: Path) -> list[Path]:
    """Image files under ``root`` (recursive, symlinked folders not followed), sorted."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(Path(folder) / name)
    return found


def check_image(path: Path, min_size: int) -> str | None:
    """None if ``path`` decodes to an image with shorter side >= min_size, else the reason."""
    try:
        with Image.open(path) as img:
            img.verify()  # cheap structural check (catches most truncated/corrupt files)
        with Image.open(path) as img:  # verify() leaves the image unusable: reopen
            img.load()  # full decode: catches what verify() cannot
            width, height = img.size
    except Exception:  # PIL raises many types for bad files; any of them means skip
        return UNREADABLE
    return TOO_SMALL if min(width, height) < min_size else None


class ImageFolderDataset(Dataset):
    """Images under ``root`` as ``(x, label)``: x float32 (3, size, size) in [-1, 1].

    Labels: a ``labels.json`` written by ``make_dataset_folder`` gives scene ids;
    otherwise, with ``labels="auto"``, the immediate sub-folder names are the classes
    (sorted; ``class_names``), and images directly in ``root`` get -1. ``labels=None``
    gives -1 everywhere. ``random_crop=True`` picks the crop along the longer side at
    random (from ``generator`` when given) instead of centring it.

    ``skipped`` counts skipped files by reason; ``skipped_files`` lists (path, reason).
    """

    def __init__(self, root: str | Path, size: int, min_size: int | None = None,
                 labels: Literal["auto"] | None = "auto", random_crop: bool = False,
                 generator: torch.Generator | None = None, progress: bool | None = None):
        root = Path(root)
        if not root.exists():
            raise NarError(f"image folder {root} does not exist")
        if not root.is_dir():
            raise NarError(f"{root} is not a folder")
        if size < 1:
            raise NarError(f"image size must be positive, got {size}")
        if labels not in ("auto", None):
            raise NarError(f"labels must be 'auto' or None, got {labels!r}")
        self.root = root
        self.size = int(size)
        self.min_size = self.size if min_size is None else int(min_size)
        self.random_crop = random_crop
        self.generator = generator
        self.skipped: dict[str, int] = {}
        self.skipped_files: list[tuple[Path, str]] = []

        candidates = find_images(root)
        self.files: list[Path] = []
        for path in _with_progress(candidates, root, progress):
            reason = check_image(path, self.min_size)
            if reason is None:
                self.files.append(path)
            else:
                self.skipped[reason] = self.skipped.get(reason, 0) + 1
                self.skipped_files.append((path, reason))
        if not self.files:
            found = f"{len(candidates)} image files" if candidates else "no image files"
            why = f" ({self._skip_text()})" if self.skipped else ""
            raise NarError(f"no usable images in {root}: found {found}{why}; "
                           f"expected {'/'.join(IMAGE_EXTENSIONS)} files, "
                           f"shorter side >= {self.min_size} px")
        self.labels, self.class_names = self._labels(labels)

    # -- labels -------------------------------------------------------------------------

    def _labels(self, mode) -> tuple[list[int], list[str]]:
        if mode is None:
            return [-1] * len(self.files), []
        written = _read_landscape_labels(self.root)
        if written is not None:
            by_file, names = written
            return [by_file.get(self._relative(p), -1) for p in self.files], names
        parts = [Path(self._relative(p)).parts for p in self.files]
        names = sorted({part[0] for part in parts if len(part) > 1})
        index = {name: i for i, name in enumerate(names)}
        return [index[part[0]] if len(part) > 1 else -1 for part in parts], names

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    # -- reporting ----------------------------------------------------------------------

    def _skip_text(self) -> str:
        return ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))

    def summary(self) -> str:
        """e.g. 'kept 120 images, skipped 3 (2 unreadable, 1 too small)'."""
        total = sum(self.skipped.values())
        text = f"kept {len(self.files)} images, skipped {total}"
        return text + (f" ({self._skip_text()})" if total else "")

    # -- items --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img = resize_shorter_side(load_image(self.files[index]), self.size)
        w, h = img.size
        if self.random_crop:
            top = int(torch.randint(0, h - self.size + 1, (1,), generator=self.generator))
            left = int(torch.randint(0, w - self.size + 1, (1,), generator=self.generator))
        else:
            top, left = (h - self.size) // 2, (w - self.size) // 2
        img = img.crop((left, top, left + self.size, top + self.size))
        return to_tensor(img), self.labels[index]


def _read_landscape_labels(root: Path) -> tuple[dict[str, int], list[str]] | None:
    """{file: scene_id} and scene names from a make_dataset_folder labels.json, if any."""
    try:
        rows = json.loads((root / "labels.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rows, list) or not all(
            isinstance(r, dict) and isinstance(r.get("file"), str)
            and isinstance(r.get("scene_id"), int) for r in rows):
        return None
    try:
        names = json.loads((root / "dataset.json").read_text())["scenes"]
    except (OSError, ValueError, KeyError, TypeError):
        from nar.data.landscapes import SCENES
        names = list(SCENES)
    return {r["file"]: r["scene_id"] for r in rows}, list(names)


def _with_progress(paths: list[Path], root: Path, progress: bool | None):
    if progress is None:
        progress = len(paths) >= _PROGRESS_FROM
    with progress_bar(bool(progress), total=len(paths), desc=f"checking images in {root}") as advance:
        for i, path in enumerate(paths):
            yield path
            advance(i + 1)
