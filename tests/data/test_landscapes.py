"""The procedural landscape generator and the datasets built on it (small sizes: fast)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from nar.core.errors import NarError
from nar.data.landscapes import (SCENES, TIMES_OF_DAY, LandscapeDataset, generate_landscape,
                                 landscape_label, make_dataset_folder, scene_id)


def test_same_seed_same_bytes_and_different_seeds_differ():
    a, label_a = generate_landscape(11, 96, 80)
    b, label_b = generate_landscape(11, 96, 80)
    assert np.array_equal(a, b) and label_a == label_b
    c, _ = generate_landscape(12, 96, 80)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("width,height", [(64, 64), (128, 64), (64, 112), (100, 77)])
def test_shapes_dtype_and_label(width, height):
    img, label = generate_landscape(5, width, height)
    assert img.shape == (height, width, 3) and img.dtype == np.uint8
    assert img.flags.c_contiguous
    assert set(label) == {"scene", "scene_id", "time_of_day", "seed"}
    assert SCENES[label["scene_id"]] == label["scene"]
    assert label["time_of_day"] in TIMES_OF_DAY and label["seed"] == 5


def test_every_scene_appears_over_seeds_and_forcing_works():
    drawn = {landscape_label(seed)["scene"] for seed in range(60)}
    assert drawn == set(SCENES)
    # landscape_label agrees with what generate_landscape reports.
    assert generate_landscape(3, 64, 64)[1] == landscape_label(3)
    for name in SCENES:
        assert generate_landscape(3, 64, 64, scene=name)[1]["scene"] == name


def test_forcing_the_drawn_scene_changes_nothing():
    img, label = generate_landscape(21, 64, 64)
    forced, _ = generate_landscape(21, 64, 64, scene=label["scene"],
                                   time_of_day=label["time_of_day"])
    assert np.array_equal(img, forced)


@pytest.mark.parametrize("scene", SCENES)
def test_every_scene_renders_at_every_time_of_day(scene):
    for i, time_of_day in enumerate(TIMES_OF_DAY):
        img, label = generate_landscape(40 + i, 72, 64, scene=scene, time_of_day=time_of_day)
        assert label["scene"] == scene and label["time_of_day"] == time_of_day
        assert img.std() > 5, (scene, time_of_day)  # not a flat colour


@pytest.mark.parametrize("scene", SCENES)
def test_resolution_independent(scene):
    """256² box-downsampled to 64² is close to the 64² render of the same seed."""
    small, _ = generate_landscape(8, 64, 64, scene=scene)
    large, _ = generate_landscape(8, 256, 256, scene=scene)
    pooled = large.astype(np.float32).reshape(64, 4, 64, 4, 3).mean(axis=(1, 3))
    diff = np.abs(pooled - small.astype(np.float32)).mean()
    assert diff < 10.0, f"{scene}: mean abs diff {diff:.1f} / 255"
    # A different seed is much further away: the match is not trivial.
    other, _ = generate_landscape(9, 64, 64, scene=scene)
    assert np.abs(other.astype(np.float32) - small).mean() > diff


def test_supersampled_render_is_the_larger_render_box_averaged():
    fine, label = generate_landscape(21, 96, 64, scene="city")
    coarse, coarse_label = generate_landscape(21, 48, 32, scene="city", supersample=2)
    assert coarse.shape == (32, 48, 3) and coarse.dtype == np.uint8 and coarse_label == label
    expected = np.floor(fine.astype(np.float32).reshape(32, 2, 48, 2, 3).mean(axis=(1, 3)) + 0.5)
    assert np.array_equal(coarse, expected.astype(np.uint8))
    # anti-aliased, so not the plain render of the same size
    assert not np.array_equal(coarse, generate_landscape(21, 48, 32, scene="city")[0])
    assert np.array_equal(generate_landscape(21, 48, 32, supersample=1)[0], generate_landscape(21, 48, 32)[0])
    for bad in (0, -2):
        with pytest.raises(NarError, match="supersample"):
            generate_landscape(0, 64, 64, supersample=bad)
    with pytest.raises(NarError, match="supersample"):
        generate_landscape(0, 2048, 2048, supersample=4)


def test_images_have_a_horizon_and_are_not_flat():
    for seed in range(12):
        img, label = generate_landscape(seed, 96, 96)
        gray = img.astype(np.float32).mean(axis=2)
        assert gray.std() > 8, label
        top, bottom = gray[:20].mean(axis=0), gray[-20:].mean(axis=0)
        top_rgb, bottom_rgb = img[:20].reshape(-1, 3).mean(0), img[-20:].reshape(-1, 3).mean(0)
        # Sky and ground differ in brightness or colour.
        assert (np.abs(top - bottom).mean() > 4
                or np.abs(top_rgb - bottom_rgb).max() > 8), label


def test_unknown_names_and_bad_sizes_are_user_errors():
    with pytest.raises(NarError, match="mountains"):
        scene_id("moon-base")
    with pytest.raises(NarError, match="unknown scene"):
        generate_landscape(0, 64, 64, scene="volcano")
    with pytest.raises(NarError, match="time of day"):
        generate_landscape(0, 64, 64, time_of_day="teatime")
    with pytest.raises(NarError, match="width"):
        generate_landscape(0, 8, 64)
    assert scene_id("city") == SCENES.index("city")


def test_dataset_items_crops_and_determinism():
    ds = LandscapeDataset(6, 128, seed=2, crop=48)
    assert len(ds) == 6
    x, label = ds[1]
    assert x.shape == (3, 48, 48) and x.dtype == torch.float32
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert isinstance(label, int) and label == ds.label(1)["scene_id"]
    again = LandscapeDataset(6, 128, seed=2, crop=48)
    assert torch.equal(x, again[1][0])
    assert ds.crop_box(1) == again.crop_box(1)
    # The crop is a window of the full render of the same item.
    full, _ = generate_landscape(2 * 1_000_003 + 1, 128, 128)
    top, left = ds.crop_box(1)
    window = torch.from_numpy(full[top:top + 48, left:left + 48]).permute(2, 0, 1).float()
    assert torch.allclose((x + 1) * 127.5, window, atol=1e-3)
    with pytest.raises(IndexError):
        ds[6]


def test_dataset_non_square_scenes_and_cache():
    ds = LandscapeDataset(4, (64, 96), seed=0, scenes=["lake", "city"], cache=True)
    x, label = ds[3]
    assert x.shape == (3, 64, 96)
    assert [ds.label(i)["scene"] for i in range(4)] == ["lake", "city", "lake", "city"]
    assert label == scene_id("city")
    assert ds[3][0] is x  # served from the cache
    with pytest.raises(NarError):
        LandscapeDataset(2, 64, scenes=["atlantis"])
    with pytest.raises(NarError):
        LandscapeDataset(2, 64, crop=65)


def test_different_dataset_seeds_give_different_images():
    a = LandscapeDataset(2, 64, seed=0)[0][0]
    b = LandscapeDataset(2, 64, seed=1)[0][0]
    assert not torch.equal(a, b)


def test_make_dataset_folder_writes_pngs_and_labels(tmp_path):
    out = make_dataset_folder(tmp_path / "set", n=3, size=64, seed=4, progress=False)
    labels = json.loads((out / "labels.json").read_text())
    assert [row["file"] for row in labels] == ["000000.png", "000001.png", "000002.png"]
    ds = LandscapeDataset(3, 64, seed=4)
    for i, row in enumerate(labels):
        img = np.asarray(Image.open(out / row["file"]))
        assert img.shape == (64, 64, 3)
        assert row["scene_id"] == ds.label(i)["scene_id"]
    assert (out / "labels.csv").read_text().splitlines()[0].startswith("file,scene")
    # Rewriting an earlier nar folder is allowed, and stale images are removed.
    make_dataset_folder(out, n=2, size=64, seed=4, progress=False)
    assert not (out / "000002.png").exists()
    assert len(json.loads((out / "labels.json").read_text())) == 2


def test_make_dataset_folder_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(NarError, match="not empty"):
        make_dataset_folder(tmp_path, n=1, size=64, seed=0, progress=False)
    assert (tmp_path / "mine.txt").read_text() == "keep me"
