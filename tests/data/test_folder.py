"""Image folders: recursive scan, cleaning (unreadable / too small), labels, transforms."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from nar.core.errors import NarError
from nar.data.folder import ImageFolderDataset
from nar.data.landscapes import SCENES, make_dataset_folder
from nar.core.images import load_image, to_pil, to_tensor


def _save(path, width, height, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


@pytest.fixture
def messy_folder(tmp_path):
    root = tmp_path / "photos"
    _save(root / "beach" / "a.png", 80, 64, 1)
    _save(root / "beach" / "b.JPG", 64, 96, 2)
    _save(root / "alps" / "deep" / "c.jpeg", 70, 70, 3)
    _save(root / "alps" / "d.webp", 128, 64, 4)
    _save(root / "alps" / "tiny.png", 40, 100, 5)                     # too small
    (root / "beach" / "broken.png").write_bytes(                       # unreadable
        np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    (root / "notes.txt").write_text("not an image")                   # ignored
    return root


def test_scan_skips_bad_files_and_counts_why(messy_folder):
    ds = ImageFolderDataset(messy_folder, 64)
    assert len(ds) == 4
    assert ds.skipped == {"unreadable": 1, "too small": 1}
    assert sorted((p.name, why) for p, why in ds.skipped_files) == [
        ("broken.png", "unreadable"), ("tiny.png", "too small")]
    assert ds.summary() == "kept 4 images, skipped 2 (1 too small, 1 unreadable)"


def test_labels_from_sub_folders_and_output_shapes(messy_folder):
    ds = ImageFolderDataset(messy_folder, 48)
    assert ds.class_names == ["alps", "beach"]
    by_name = {p.name: label for p, label in zip(ds.files, ds.labels)}
    assert by_name == {"c.jpeg": 0, "d.webp": 0, "a.png": 1, "b.JPG": 1}
    for i in range(len(ds)):
        x, label = ds[i]
        assert x.shape == (3, 48, 48) and x.dtype == torch.float32
        assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
        assert label in (0, 1)
    assert all(label == -1 for label in ImageFolderDataset(messy_folder, 48, labels=None).labels)


def test_min_size_and_random_crop(messy_folder):
    ds = ImageFolderDataset(messy_folder, 32, min_size=16, random_crop=True,
                            generator=torch.Generator().manual_seed(0))
    assert len(ds) == 5 and ds.skipped == {"unreadable": 1}
    assert ds[0][0].shape == (3, 32, 32)


def test_missing_or_empty_folder_is_a_user_error(tmp_path):
    with pytest.raises(NarError, match="does not exist"):
        ImageFolderDataset(tmp_path / "nope", 64)
    (tmp_path / "empty").mkdir()
    with pytest.raises(NarError, match="no usable images"):
        ImageFolderDataset(tmp_path / "empty", 64)
    _save(tmp_path / "small" / "x.png", 20, 20)
    with pytest.raises(NarError, match="1 too small"):
        ImageFolderDataset(tmp_path / "small", 64)


def test_reads_back_labels_of_a_landscape_folder(tmp_path):
    out = make_dataset_folder(tmp_path / "landscapes", n=4, size=64, seed=7, progress=False)
    ds = ImageFolderDataset(out, 64)
    written = json.loads((out / "labels.json").read_text())
    assert ds.labels == [row["scene_id"] for row in written]
    assert ds.class_names == list(SCENES)
    # A 64² image at size 64 is passed through unchanged.
    x, _ = ds[0]
    original = np.asarray(Image.open(out / "000000.png"))
    assert np.array_equal(((x + 1) * 127.5).round().byte().permute(1, 2, 0).numpy(), original)


def test_image_helpers(tmp_path):
    _save(tmp_path / "rgb.png", 10, 6)
    img = load_image(tmp_path / "rgb.png")
    assert img.mode == "RGB" and img.size == (10, 6)
    x = to_tensor(img)
    assert x.shape == (3, 6, 10)
    assert np.array_equal(np.asarray(to_pil(x)), np.asarray(img))
    Image.new("LA", (5, 5)).save(tmp_path / "gray.png")
    assert load_image(tmp_path / "gray.png").mode == "RGB"
    (tmp_path / "bad.png").write_bytes(b"definitely not a png")
    with pytest.raises(NarError, match="cannot read image"):
        load_image(tmp_path / "bad.png")
    with pytest.raises(NarError, match="cannot read image"):
        load_image(tmp_path / "missing.png")
