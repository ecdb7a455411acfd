"""Fresh token grids for prior training: procedural renders encoded while the prior trains.

A token cache holds a few thousand grids that a long run sees again and again. The procedural
generator is free, so a prior can instead train on a stream of new scenes: worker processes
render landscapes and encode them with the tokenizer while the training loop runs, and the
loop draws its batches from the grids made so far.

The stream is a fixed sequence: grid ``i`` is the tokens of item ``i`` of
``LandscapeDataset(..., size, seed)``, whatever process made it. The pool grows on a fixed
schedule, ``initial + floor(step * per_step)`` grids before step ``step``, and a batch is drawn
with the step's generator from the newest ``window`` of them (all when ``window`` is 0). When
the workers fall behind, training waits for them, so a run (or a resumed run) sees exactly the
same batches however fast its workers are.

Grids are kept in a folder (``RUN/fresh_tokens/`` by default) in chunks (``chunk-000000.npz``
...), written atomically; a resumed run reads them back and its workers go on from the next
chunk. The folder's ``header.json`` records the stream (tokenizer, size, seed, chunk size), and
a pool of another stream is refused. Runs may share one folder, at the same time too: a chunk
another run has written is read, not made again (the same grids, whoever makes them). The
schedule is the run's own (`schedule`), recorded by the caller beside the run.
"""
from __future__ import annotations

import json
import math
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nar.core.checkpoint import atomic_write_text, read_json
from nar.core.errors import NarError
from nar.data.tokens import token_dtype

FORMAT = "nar-fresh-tokens"
HEADER = "header.json"
CHUNK_FILE = "chunk-{:06d}.npz"
STREAM_LENGTH = 1_000_003        # items of one LandscapeDataset seed before the next seed's begin

# set in each worker process by _init_worker
_worker_tokenizer = None


def _exit_with_parent(parent: int, every: float = 2.0) -> None:
    """A worker whose training process was killed (SIGKILL, SIGTERM: no pool shutdown runs) is
    re-parented; it then exits instead of rendering on for nobody."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(0)


def _init_worker(tokenizer_path: str, threads: int) -> None:
    global _worker_tokenizer
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    torch.set_num_threads(threads)
    from nar.tokenizer.load import load_tokenizer
    _worker_tokenizer = load_tokenizer(tokenizer_path)


def _worker_chunk(size: int, seed: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    return encode_landscapes(_worker_tokenizer, size, seed, start, count)


def encode_landscapes(tokenizer, size: int, seed: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Tokens (count, h, w) and scene ids (count,) of items start.. of LandscapeDataset(size, seed),
    encoded one image at a time in fp32 (the same tokens in any process, under any autocast)."""
    from nar.data.landscapes import LandscapeDataset
    from nar.tokenizer.tiling import encode_images
    dataset = LandscapeDataset(STREAM_LENGTH, size, seed=seed)
    grids, labels = [], []
    with torch.autocast("cpu", enabled=False):
        for index in range(start, start + count):
            image, label = dataset[index]
            grids.append(encode_images(tokenizer, image[None]).cpu().numpy()[0])
            labels.append(label)
    return np.stack(grids).astype(token_dtype(tokenizer.codebook_size)), np.asarray(labels, dtype=np.int64)


class FreshTokens:
    """A growing pool of token grids of fresh renders, read like a `TokenCache`
    (``grid``, ``codebook_size``, ``class_names``, ``header``, ``labels``, ``batch``)."""

    def __init__(self, tokenizer_path: str | Path, folder: str | Path, size: int = 1024, seed: int = 0,
                 initial: int = 64, per_step: float = 1.0, window: int = 0, chunk: int = 4,
                 workers: int = 1, worker_threads: int = 1):
        from nar.data.landscapes import SCENES
        from nar.tokenizer.load import load_tokenizer
        if initial < 1 or per_step < 0 or window < 0 or chunk < 1 or workers < 0 or worker_threads < 1:
            raise NarError("fresh tokens: initial and chunk must be >= 1, per_step, window and workers >= 0, "
                           "worker_threads >= 1")
        self.tokenizer_path = Path(tokenizer_path).resolve()
        self.tokenizer = load_tokenizer(self.tokenizer_path)
        self.grid = self.tokenizer.grid(size, size)
        self.folder = Path(folder)
        self.size, self.seed, self.chunk = size, seed, chunk
        self.initial, self.per_step, self.window = initial, per_step, window
        self.header: dict[str, Any] = {
            "format": FORMAT, "version": 1, "grid": list(self.grid),
            "codebook_size": self.tokenizer.codebook_size, "tokenizer_hash": self.tokenizer.hash,
            "tokenizer_path": str(self.tokenizer_path), "tokenizer_factor": self.tokenizer.factor,
            "class_names": list(SCENES), "image_size": [size, size],
            "source": f"fresh procedural landscapes, LandscapeDataset seed {seed}", "chunk": chunk}
        self.schedule = {"initial": initial, "per_step": per_step, "window": window}
        self._check_or_write_header()
        self._tokens: list[np.ndarray] = []      # chunks, in stream order
        self._labels: list[np.ndarray] = []
        self._load_chunks()
        self.workers, self.worker_threads = workers, worker_threads
        self._pool: ProcessPoolExecutor | None = None
        self._pending: dict[int, Future] = {}    # chunk index -> its worker's result
        self._step: int | None = None            # the step batches are drawn for (advance_to)

    # ---- TokenCache interface -------------------------------------------------------
    @property
    def path(self) -> Path:
        """What a prior checkpoint records as its data (``token_cache``)."""
        return self.folder

    @property
    def codebook_size(self) -> int:
        return self.tokenizer.codebook_size

    @property
    def class_names(self) -> list[str]:
        return list(self.header["class_names"])

    @property
    def labelled(self) -> bool:
        return True                              # every render has its scene id

    @property
    def labels(self) -> np.ndarray:
        return np.concatenate(self._labels) if self._labels else np.zeros((0,), dtype=np.int64)

    def __len__(self) -> int:
        return sum(len(t) for t in self._tokens)

    def available(self, step: int) -> int:
        """Grids the pool holds before training step ``step`` (0-based)."""
        return self.initial + math.floor(step * self.per_step)

    def advance_to(self, step: int) -> None:
        """Make (or wait for) every grid that step ``step`` may draw, and queue the next ones."""
        needed = self.available(step)
        last_chunk = (needed - 1) // self.chunk
        self._load_chunks()                      # what other runs sharing the folder have made
        if self.workers:
            self._start_workers()
            # keep the workers busy ahead of the schedule, two chunks per worker
            ahead = last_chunk + 2 * self.workers
            for index in range(len(self._tokens), ahead + 1):
                if index not in self._pending and not self._chunk_file(index).is_file():
                    self._pending[index] = self._pool.submit(_worker_chunk, self.size, self.seed,
                                                             index * self.chunk, self.chunk)
        while len(self._tokens) <= last_chunk:
            index = len(self._tokens)
            if self._chunk_file(index).is_file():
                self._load_chunks()
                continue
            if index in self._pending:
                tokens, labels = self._pending.pop(index).result()
            else:
                tokens, labels = encode_landscapes(self.tokenizer, self.size, self.seed,
                                                   index * self.chunk, self.chunk)
            self._save_chunk(index, tokens, labels)
        for index in [i for i in self._pending if i < len(self._tokens)]:
            self._pending.pop(index).cancel()    # made by another run meanwhile
        self._step = step

    def batch(self, batch_size: int, generator: torch.Generator,
              keep: slice | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A random batch (with replacement) of the newest ``window`` grids available at the
        step given to `advance_to`: (B, h, w) long, (B,) long."""
        if self._step is None:
            raise RuntimeError("FreshTokens.advance_to(step) must come before batch()")
        stop = self.available(self._step)
        start = max(0, stop - self.window) if self.window else 0
        idx = start + torch.randint(stop - start, (batch_size,), generator=generator).numpy()
        if keep is not None:
            idx = idx[keep]
        chunk_of, offset = idx // self.chunk, idx % self.chunk
        tokens = np.stack([self._tokens[c][o] for c, o in zip(chunk_of, offset)]).astype(np.int64)
        labels = np.asarray([self._labels[c][o] for c, o in zip(chunk_of, offset)], dtype=np.int64)
        return torch.from_numpy(tokens), torch.from_numpy(labels)

    def close(self) -> None:
        """Stop the workers (grids already made stay on disk for a resumed run)."""
        if self._pool is not None:
            for future in self._pending.values():
                future.cancel()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool, self._pending = None, {}

    # ---- internals --------------------------------------------------------------------
    def _start_workers(self) -> None:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker,
                                             initargs=(str(self.tokenizer_path), self.worker_threads))

    def _check_or_write_header(self) -> None:
        file = self.folder / HEADER
        if file.is_file():
            old = read_json(file)
            mismatch = [k for k in ("format", "grid", "codebook_size", "tokenizer_hash", "image_size",
                                    "source", "chunk") if old.get(k) != self.header[k]]
            if mismatch:
                raise NarError(f"{self.folder} holds fresh tokens of another stream ({', '.join(mismatch)} "
                               "differ); resume with the same tokenizer and settings, or use a new run folder")
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(file, json.dumps(self.header, indent=2))

    def _chunk_file(self, index: int) -> Path:
        return self.folder / CHUNK_FILE.format(index)

    def _load_chunks(self) -> None:
        """Read the chunks on disk that this pool does not hold yet, in stream order."""
        for tokens, labels in read_chunks(self.folder, self.chunk, self.grid, start=len(self._tokens)):
            self._tokens.append(tokens)
            self._labels.append(labels)

    def _save_chunk(self, index: int, tokens: np.ndarray, labels: np.ndarray) -> None:
        file = self._chunk_file(index)
        tmp = file.with_name(f"{file.stem}.{os.getpid()}.tmp.npz")   # runs sharing the folder never collide
        np.savez(tmp, tokens=tokens, labels=labels)
        os.replace(tmp, file)
        self._tokens.append(tokens)
        self._labels.append(labels)

    def __enter__(self) -> "FreshTokens":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_chunks(folder: Path, chunk: int, grid, start: int = 0):
    """Yield (tokens (chunk, h, w), labels (chunk,)) of a pool folder's chunk files from ``start``
    on, in stream order, up to the first one not written yet."""
    index = start
    while (file := folder / CHUNK_FILE.format(index)).is_file():
        with np.load(file) as data:
            tokens, labels = data["tokens"], data["labels"]
        if tokens.shape != (chunk, *grid) or labels.shape != (chunk,):
            raise NarError(f"{file} does not match {folder / HEADER}")
        yield tokens, labels
        index += 1


def join_pools(folders: list[str | Path], out: str | Path) -> Path:
    """Join the grids that fresh-render runs made (their ``fresh_tokens`` folders) into one token
    cache, so a later run can read every one of them once instead of rendering them again or
    re-reading a small pool. The pools must share tokenizer, grid and image size."""
    from nar.data.tokens import check_new_cache, write_token_cache
    if not folders:
        raise NarError("join pools: name at least one fresh_tokens folder")
    check_new_cache(out)
    headers, tokens, labels = [], [], []
    for folder in map(Path, folders):
        file = folder / HEADER
        if not file.is_file():
            raise NarError(f"{folder} is not a pool of fresh tokens (no {HEADER})")
        header = read_json(file)
        if header.get("format") != FORMAT:
            raise NarError(f"{folder} is not a pool of fresh tokens")
        for key in ("grid", "codebook_size", "tokenizer_hash", "image_size", "class_names"):
            if headers and header.get(key) != headers[0].get(key):
                raise NarError(f"{folder} differs from {folders[0]} in {key}; pools of one tokenizer and size only")
        chunks = list(read_chunks(folder, int(header["chunk"]), header["grid"]))
        if not chunks:
            raise NarError(f"{folder} holds no grids")
        tokens += [t for t, _ in chunks]
        labels += [y for _, y in chunks]
        headers.append({**header, "grids": len(chunks) * int(header["chunk"])})
    first = headers[0]
    keep = ("codebook_size", "tokenizer_hash", "tokenizer_path", "tokenizer_factor", "class_names", "image_size")
    header = {k: first[k] for k in keep if k in first}
    header["source"] = "; ".join(f"{h['source']}: items 0-{h['grids'] - 1}" for h in headers)
    return write_token_cache(out, np.concatenate(tokens), np.concatenate(labels), header)   # it casts to the cache's dtypes
