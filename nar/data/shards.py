"""Large image collections as WebDataset tar shards, streamed across ranks and workers.

``nar data shards --src FOLDER --out DIR --per-shard N`` packs a folder of images into
``DIR/shard-000000.tar ...`` (the WebDataset layout: one ``KEY.jpg|png|webp`` + ``KEY.cls`` +
``KEY.json`` per image, the original file bytes, never re-encoded) and writes
``DIR/index.json`` last (image counts per shard, class names, what was skipped). Cleaning is
the folder reader's (`nar.data.folder.check_image`): unreadable files and images whose
shorter side is below ``min_size`` are skipped and counted in the report and the index. The
file order is shuffled (seeded) before packing, so a shard is a random sample of the folder
even when the folder is sorted by class.

`ShardStream` is an endless ``IterableDataset`` over a shard folder. Epoch ``e`` shuffles the
shard order with ``(seed, e)`` and deals the shards to ranks, then to data-loader workers
(``order[rank::world][worker::workers]``): within an epoch every image is read by exactly
one (rank, worker), none twice, none skipped. Each worker moves on to the next epoch on its
own when its shards are done, so the stream never ends and no rank waits for another at an
epoch boundary. ``start`` skips that many items of this rank's stream (exact resume) without
decoding them.
"""
from __future__ import annotations

import io
import json
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from torch.utils.data import IterableDataset, get_worker_info

from nar.core.checkpoint import atomic_write_text, read_json
from nar.core.errors import NarError

FORMAT = "nar-shards"
INDEX = "index.json"
SHARD_NAME = "shard-{:06d}.tar"
_EXT = {".jpg": "jpg", ".jpeg": "jpg", ".png": "png", ".webp": "webp"}
IMAGE_KEYS = ("jpg", "png", "webp")


def is_shard_folder(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and ((path / INDEX).is_file() or any(path.glob("*.tar")))


# ---- writing --------------------------------------------------------------------------------
def write_shards(src: str | Path, out: str | Path, per_shard: int, min_size: int = 256,
                 seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Pack the usable images of ``src`` into tar shards of ``per_shard`` images; returns the index.

    Nothing half-written: shards are written under temporary names and renamed; index.json
    comes last; on any error the shards written so far are removed."""
    import webdataset as wds

    from nar.data.folder import ImageFolderDataset
    src, out = Path(src), Path(out)
    if per_shard < 1:
        raise NarError(f"--per-shard must be at least 1 (got {per_shard})")
    if out.exists() and not out.is_dir():
        raise NarError(f"{out} exists and is not a folder")
    if out.is_dir() and ((out / INDEX).exists() or any(out.glob("*.tar"))):
        raise NarError(f"{out} already holds shards; pick another --out")
    if out.resolve() == src.resolve() or src.resolve() in out.resolve().parents:
        raise NarError(f"--out {out} must not lie inside --src {src}")
    # the folder reader's scan: every file decoded once, unusable ones skipped and counted
    folder = ImageFolderDataset(src, min_size, progress=progress if progress else False)
    files = list(zip(folder.files, folder.labels))
    random.Random(seed).shuffle(files)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    shards = []
    try:
        for start in range(0, len(files), per_shard):
            chunk = files[start:start + per_shard]
            name = SHARD_NAME.format(len(shards))
            tmp = out / f".{name}.tmp"
            with open(tmp, "wb") as f:
                writer = wds.TarWriter(f, encoder=False, mtime=0)
                for i, (path, label) in enumerate(chunk):
                    key = f"{start + i:09d}"
                    rel = path.relative_to(src).as_posix()
                    writer.write({"__key__": key, _EXT[path.suffix.lower()]: path.read_bytes(),
                                  "cls": str(int(label)).encode(),
                                  "json": json.dumps({"file": rel}).encode()})
                writer.close()
            written.append(tmp)
            tmp.replace(out / name)
            written[-1] = out / name
            shards.append({"file": name, "count": len(chunk)})
        index = {"format": FORMAT, "version": 1, "n": len(files), "shards": shards,
                 "class_names": list(folder.class_names), "min_size": int(min_size),
                 "source": str(src.resolve()), "seed": seed, "skipped": dict(folder.skipped),
                 "skipped_files": [[p.relative_to(src).as_posix(), r] for p, r in folder.skipped_files]}
        atomic_write_text(out / INDEX, json.dumps(index, indent=1))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        for tmp in out.glob(".shard-*.tmp"):
            tmp.unlink(missing_ok=True)
        raise
    index["summary"] = (f"wrote {len(files)} images in {len(shards)} shards to {out}; "
                        f"{folder.summary()}")
    return index


# ---- reading --------------------------------------------------------------------------------
@dataclass
class ShardSet:
    root: Path
    index: dict[str, Any]

    @classmethod
    def open(cls, root: str | Path) -> "ShardSet":
        root = Path(root)
        if not root.is_dir():
            raise NarError(f"shard folder not found: {root}")
        index_file = root / INDEX
        if not index_file.is_file():
            if any(root.glob("*.tar")):
                raise NarError(f"{root} has .tar files but no {INDEX}: not written by `nar data shards`, "
                               "or the writing was interrupted; write the shards again")
            raise NarError(f"no shards in {root}: make them with `nar data shards --src FOLDER --out {root}`")
        index = read_json(index_file)
        if index.get("format") != FORMAT or not isinstance(index.get("shards"), list):
            raise NarError(f"{index_file} is not a nar shard index")
        if not index["shards"] or int(index.get("n", 0)) == 0:
            raise NarError(f"no shards in {root} (its index lists no images)")
        for shard in index["shards"]:
            if not (root / shard["file"]).is_file():
                raise NarError(f"shard {root / shard['file']} listed in {INDEX} is missing")
        return cls(root, index)

    def __len__(self) -> int:
        return int(self.index["n"])

    @property
    def shards(self) -> list[dict[str, Any]]:
        return self.index["shards"]

    @property
    def class_names(self) -> list[str]:
        return list(self.index.get("class_names") or [])

    @property
    def min_size(self) -> int:
        return int(self.index.get("min_size", 0))

    def check_size(self, size: int) -> None:
        if self.min_size < size:
            raise NarError(f"shards in {self.root} keep images down to {self.min_size} px, smaller than the "
                           f"image size {size}; write them again with --min-size {size}")

    def samples(self, shard: int) -> Iterator[dict[str, Any]]:
        """Raw samples ({"__key__", "jpg"|"png"|"webp", "cls", "json"}) of one shard, in order."""
        from webdataset.tariterators import group_by_keys, tar_file_iterator
        path = self.root / self.shards[shard]["file"]

        def files():
            with open(path, "rb") as f:
                for item in tar_file_iterator(f):
                    item["__url__"] = str(path)
                    yield item
        try:
            yield from group_by_keys(files())
        except (tarfile.TarError, ValueError, OSError) as e:
            raise NarError(f"shard {path} is corrupt ({str(e).split(' @ ')[0]})") from None


def decode_sample(sample: dict[str, Any], size: int, where: str = "") -> tuple[torch.Tensor, int]:
    """A shard sample -> ((3, size, size) float in [-1, 1], label): the folder reader's resize
    (shorter side to size) and centre crop."""
    from PIL import Image

    from nar.data.transforms import resize_shorter_side, to_tensor
    key = next((k for k in IMAGE_KEYS if k in sample), None)
    name = f"{where} member {sample.get('__key__')}"
    if key is None:
        raise NarError(f"shard{name} holds no image (.jpg/.png/.webp)")
    try:
        with Image.open(io.BytesIO(sample[key])) as img:
            img.load()
            image = img.convert("RGB")
        label = int(sample["cls"].decode()) if "cls" in sample else -1
    except Exception as e:   # PIL raises many types for bad bytes
        raise NarError(f"shard{name}.{key} cannot be decoded ({type(e).__name__}): the shard is corrupt") from None
    img = resize_shorter_side(image, size)
    w, h = img.size
    top, left = (h - size) // 2, (w - size) // 2
    return to_tensor(img.crop((left, top, left + size, top + size))), label


def epoch_order(n_shards: int, seed: int, epoch: int) -> list[int]:
    order = list(range(n_shards))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


def assigned_shards(n_shards: int, seed: int, epoch: int, rank: int, world: int,
                    worker: int, workers: int) -> list[int]:
    """The shards (rank, worker) reads in ``epoch``: a partition of all shards."""
    return epoch_order(n_shards, seed, epoch)[rank::world][worker::workers]


class ShardStream(IterableDataset):
    """Endless stream of ``(image (3, size, size) in [-1, 1], label)`` for one rank.

    With a DataLoader (batch_size=None, any num_workers) the rank's stream is the workers'
    streams interleaved round-robin: item k comes from worker k % workers. ``start`` skips the
    first ``start`` items of that interleaved stream (a resumed run), by shard counts where it
    can and without decoding the rest."""

    def __init__(self, shards: ShardSet, size: int, seed: int = 0, rank: int = 0, world: int = 1,
                 start: int = 0, decode: bool = True):
        shards.check_size(size)
        self.shards, self.size, self.seed = shards, size, seed
        self.rank, self.world, self.start, self.decode = rank, world, start, decode

    def check_layout(self, workers: int) -> None:
        need = self.world * max(1, workers)
        if len(self.shards.shards) < need:
            raise NarError(f"{self.shards.root} has {len(self.shards.shards)} shards for {self.world} ranks x "
                           f"{max(1, workers)} data workers; write at least {need} (a smaller --per-shard)")

    def __iter__(self) -> Iterator[tuple[Any, int]]:
        info = get_worker_info()
        return self.items(*((info.id, info.num_workers) if info is not None else (0, 1)))

    def items(self, loader_worker: int, workers: int) -> Iterator[tuple[Any, int]]:
        """What data-loader worker ``loader_worker`` of ``workers`` yields."""
        self.check_layout(workers)
        # item k of the rank's stream is item k // workers of (virtual) worker k % workers. A
        # loader restarted at ``start`` hands its first item to worker 0, so loader worker w
        # plays virtual worker (start + w) % workers, from that worker's item (start + w) // workers
        worker = (self.start + loader_worker) % workers
        skip = (self.start + loader_worker) // workers
        counts = [int(s["count"]) for s in self.shards.shards]
        epoch = 0
        while True:
            mine = assigned_shards(len(counts), self.seed, epoch, self.rank, self.world, worker, workers)
            per_epoch = sum(counts[s] for s in mine)
            if skip >= per_epoch:       # whole epochs skipped without opening a shard
                skip -= per_epoch
                epoch += 1
                continue
            for s in mine:
                if skip >= counts[s]:
                    skip -= counts[s]
                    continue
                where = f" {self.shards.root / self.shards.shards[s]['file']}"
                for sample in self.shards.samples(s):
                    if skip:
                        skip -= 1
                        continue
                    if self.decode:
                        yield decode_sample(sample, self.size, where)
                    else:
                        yield sample["__key__"], int(sample["cls"].decode()) if "cls" in sample else -1
            epoch += 1


class StreamReader:
    """Pulls items from a `ShardStream` through a DataLoader in the main process and counts
    them (``consumed`` is what a checkpoint stores to resume the stream exactly)."""

    def __init__(self, stream: ShardStream, workers: int = 0):
        stream.check_layout(workers)
        self.stream, self.workers = stream, workers
        self.consumed = stream.start
        self._it = None

    def take(self, n: int) -> list[tuple[Any, int]]:
        if self._it is None:
            loader = torch.utils.data.DataLoader(self.stream, batch_size=None, num_workers=self.workers,
                                                 collate_fn=None,
                                                 persistent_workers=self.workers > 0)
            self._it = iter(loader)
        items = []
        for _ in range(n):
            try:
                items.append(next(self._it))
            except NarError as e:   # raised in a worker: DataLoader wraps it with a traceback
                lines = [ln for ln in str(e).splitlines() if ln.strip()]
                last = lines[-1] if lines else str(e)
                raise NarError(last.split("NarError: ", 1)[-1]) from None
        self.consumed += n
        return items

    def close(self) -> None:
        self._it = None


def read_range(shards: ShardSet, start: int, stop: int, size: int) -> Iterator[tuple[torch.Tensor, int]]:
    """Images [start, stop) of the shards in index order (shard 0 first), decoded; earlier
    shards are skipped by their counts, earlier members of the first shard without decoding."""
    shards.check_size(size)
    offset = 0
    for s, info in enumerate(shards.shards):
        count = int(info["count"])
        if offset + count <= start:
            offset += count
            continue
        if offset >= stop:
            return
        where = f" {shards.root / info['file']}"
        for sample in shards.samples(s):
            if start <= offset < stop:
                yield decode_sample(sample, size, where)
            offset += 1
            if offset >= stop:
                return
