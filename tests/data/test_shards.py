"""WebDataset shards: the folder reader's cleaning, a complete and disjoint split over ranks and
data-loader workers every pass, exact resume of the stream, and clear errors on bad shards."""
from __future__ import annotations

import io
import itertools
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nar.core.errors import NarError
from nar.data.shards import (ShardSet, ShardStream, StreamReader, assigned_shards, read_range,
                             write_shards)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture()
def folder(tmp_path):
    """Two classes of 7 good images each, one unreadable file, one too small."""
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for cls in ("lake", "city"):
        (root / cls).mkdir(parents=True)
        for i in range(7):
            Image.fromarray(rng.integers(0, 255, (40, 52, 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    (root / "lake" / "broken.jpg").write_bytes(b"not a jpeg")
    Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(root / "city" / "tiny.png")
    return root


@pytest.fixture()
def shards(folder, tmp_path):
    index = write_shards(folder, tmp_path / "shards", per_shard=2, min_size=32, seed=3, progress=False)
    return ShardSet.open(tmp_path / "shards"), index


def keys_of(stream_items):
    return [key for key, _ in stream_items]


def test_shards_keep_every_usable_image_once_and_count_the_rest(shards, folder):
    shard_set, index = shards
    assert index["summary"].endswith("kept 14 images, skipped 2 (1 too small, 1 unreadable)")
    assert index["skipped"] == {"too small": 1, "unreadable": 1}
    assert len(shard_set) == 14 and len(shard_set.shards) == 7 and shard_set.class_names == ["city", "lake"]
    files = [json.loads(s["json"])["file"] for i in range(7) for s in shard_set.samples(i)]
    assert sorted(files) == sorted(p.relative_to(folder).as_posix() for p in folder.rglob("[0-9].png"))
    images = list(read_range(shard_set, 3, 9, 32))
    assert len(images) == 6 and images[0][0].shape == (3, 32, 32) and images[0][1] in (0, 1)


def test_two_ranks_times_two_workers_read_every_image_once_per_pass(shards):
    shard_set, _ = shards
    counts = [s["count"] for s in shard_set.shards]
    for epoch in range(2):
        seen = []
        for rank, worker in itertools.product(range(2), range(2)):
            mine = assigned_shards(len(counts), 0, epoch, rank, 2, worker, 2)
            stream = ShardStream(shard_set, 32, rank=rank, world=2, decode=False)
            # skip this worker's earlier passes, then read exactly one pass
            before = sum(sum(counts[s] for s in assigned_shards(len(counts), 0, e, rank, 2, worker, 2))
                         for e in range(epoch))
            items = itertools.islice(stream.items(worker, 2), before, before + sum(counts[s] for s in mine))
            seen += keys_of(items)
        assert len(seen) == len(set(seen)) == 14


def test_stream_resumes_exactly_with_data_loader_workers(shards):
    shard_set, _ = shards
    whole = keys_of(StreamReader(ShardStream(shard_set, 32, rank=1, world=2, decode=False), workers=2).take(20))
    assert len(set(whole[:4])) == 4          # item k comes from worker k % 2: no repeat early on
    resumed = StreamReader(ShardStream(shard_set, 32, rank=1, world=2, decode=False, start=9), workers=2)
    assert keys_of(resumed.take(11)) == whole[9:]


def test_bad_shard_folders_fail_with_one_clear_sentence(shards, tmp_path):
    shard_set, _ = shards
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NarError, match="no shards in"):
        ShardSet.open(empty)
    (empty / "stray.tar").write_bytes(b"")
    with pytest.raises(NarError, match="no index.json"):
        ShardSet.open(empty)
    with pytest.raises(NarError, match="already holds shards"):
        write_shards(tmp_path / "photos", shard_set.root, per_shard=2, min_size=32, progress=False)
    with pytest.raises(NarError, match="--min-size 48"):
        ShardStream(shard_set, 48)
    with pytest.raises(NarError, match="write at least 8"):
        ShardStream(shard_set, 32, world=4).check_layout(2)


def corrupt_member(shard_set: ShardSet) -> None:
    """Replace the image bytes of the first member of shard 0 with garbage (a valid tar)."""
    path = shard_set.root / shard_set.shards[0]["file"]
    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(path, "w") as tar:
        for i, (m, data) in enumerate(members):
            data = b"garbage" if i == 0 else data
            m.size = len(data)
            tar.addfile(m, io.BytesIO(data))


def test_corrupt_member_or_truncated_shard_is_a_clear_error(shards):
    shard_set, _ = shards
    corrupt_member(shard_set)
    with pytest.raises(NarError, match=r"member \d+\.png cannot be decoded .* corrupt") as err:
        StreamReader(ShardStream(shard_set, 32, world=1), workers=2).take(14)
    assert "\n" not in str(err.value) and "Traceback" not in str(err.value)
    path = shard_set.root / shard_set.shards[1]["file"]
    path.write_bytes(path.read_bytes()[:700])
    with pytest.raises(NarError, match="is corrupt"):
        list(read_range(shard_set, 2, 4, 32))


def test_interrupted_writing_leaves_nothing(folder, tmp_path, monkeypatch):
    import nar.data.shards as shards_module

    def disk_full(*_):
        raise OSError("disk full")
    monkeypatch.setattr(shards_module, "atomic_write_text", disk_full)
    with pytest.raises(OSError):
        write_shards(folder, tmp_path / "out", per_shard=4, min_size=32, progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    from nar.cli import main
    monkeypatch.setattr(sys, "argv", ["nar", *map(str, args)])
    with pytest.raises(SystemExit) as done:
        main()
    return done.value.code, capsys.readouterr().err


def test_training_on_bad_shards_exits_2_with_one_line_and_no_checkpoint(shards, tmp_path, monkeypatch, capsys):
    shard_set, _ = shards
    corrupt_member(shard_set)
    code, err = run_cli(monkeypatch, capsys, "tokenizer", "train", "-c", CONFIGS / "tokenizer" / "tiny.toml",
                        "--set", "train.steps=2", "--set", "image_size=32", "--data", shard_set.root,
                        "--out", tmp_path / "run")
    assert code == 2 and "cannot be decoded" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "model.safetensors").exists() and not (tmp_path / "run" / "state.safetensors").exists()
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "a.tar").write_bytes(b"")
    code, err = run_cli(monkeypatch, capsys, "tokenizer", "train", "-c", CONFIGS / "tokenizer" / "tiny.toml",
                        "--data", tmp_path / "stray", "--out", tmp_path / "run2")
    assert code == 2 and "no index.json" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run2").exists()
