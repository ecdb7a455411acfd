"""Token cache: (N, h, w) integer tokens memory-mapped on disk plus a JSON header.

Layout of a cache folder::

    TOKENS/header.json   {"format": "nar-tokens", "version": 1, "n", "grid": [h, w],
                          "dtype", "codebook_size", "tokenizer_hash", "tokenizer_factor",
                          "class_names": [...], "image_size": [H, W]}
    TOKENS/tokens.npy    (N, h, w) int16/int32, opened with mmap
    TOKENS/labels.npy    (N,) int64 class ids (-1 when unlabelled)

A cache written by ``torchrun ... nar tokenizer encode`` is sharded: one such folder per rank
(``TOKENS/rank-00000/`` ...) and ``TOKENS/index.json`` (written last, by rank 0, once every
rank has finished) listing them in order. `TokenCache.open` reads either layout; a sharded
cache reads as one (rank 0's images first).

Priors train from this; they never see the tokenizer itself, only its hash (to refuse a
prior checkpoint or cache that belongs to another tokenizer).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nar.core.checkpoint import atomic_write_text, read_json
from nar.core.errors import NarError

FORMAT = "nar-tokens"
INDEX = "index.json"
SHARD_DIR = "rank-{:05d}"


def token_dtype(codebook_size: int) -> np.dtype:
    return np.dtype(np.int16) if codebook_size <= 32767 else np.dtype(np.int32)


class TokenCacheWriter:
    """Write a cache incrementally (encoding a big dataset batch by batch)."""

    def __init__(self, out: str | Path, n: int, grid: tuple[int, int], header: dict[str, Any]):
        self.out = Path(out)
        if (self.out / "header.json").exists() or (self.out / INDEX).exists():
            raise NarError(f"{self.out} already holds a token cache; pick another output folder")
        self.out.mkdir(parents=True, exist_ok=True)
        self.header = {"format": FORMAT, "version": 1, "n": n, "grid": list(grid), **header}
        dtype = token_dtype(int(header["codebook_size"]))
        self.header["dtype"] = dtype.name
        self._tokens = np.lib.format.open_memmap(self.out / "tokens.npy.tmp", mode="w+", dtype=dtype,
                                                 shape=(n, *grid))
        self._labels = np.full((n,), -1, dtype=np.int64)
        self.count = 0

    def add(self, tokens: torch.Tensor | np.ndarray, labels=None) -> None:
        tokens = np.asarray(tokens.cpu() if torch.is_tensor(tokens) else tokens)
        b = tokens.shape[0]
        self._tokens[self.count:self.count + b] = tokens
        if labels is not None:
            self._labels[self.count:self.count + b] = np.asarray(labels)
        self.count += b

    def close(self) -> Path:
        if self.count != self.header["n"]:
            raise RuntimeError(f"token cache got {self.count} grids, expected {self.header['n']}")
        self._tokens.flush()
        del self._tokens
        (self.out / "tokens.npy.tmp").replace(self.out / "tokens.npy")
        np.save(self.out / "labels.npy", self._labels)
        # header last: a cache without header.json is incomplete and refused on open
        atomic_write_text(self.out / "header.json", json.dumps(self.header, indent=2))
        return self.out


def write_token_cache(out: str | Path, tokens, labels, header: dict[str, Any]) -> Path:
    tokens = np.asarray(tokens)
    writer = TokenCacheWriter(out, tokens.shape[0], tokens.shape[1:], header)
    writer.add(tokens, labels)
    return writer.close()


def check_new_cache(out: str | Path) -> None:
    """Refuse an --out that already holds a token cache (single-file or sharded)."""
    out = Path(out)
    if (out / "header.json").exists() or (out / INDEX).exists() or any(out.glob("rank-*/header.json")):
        raise NarError(f"{out} already holds a token cache; pick another output folder")


def write_shard_index(out: str | Path, shards: list[str]) -> Path:
    """Join per-rank caches ``out/<shard>`` into one sharded cache (index.json, written last)."""
    out = Path(out)
    headers = []
    for name in shards:
        cache = TokenCache.open(out / name, allow_empty=True)
        headers.append(cache.header)
    first = headers[0]
    for name, h in zip(shards, headers):
        for key in ("grid", "codebook_size", "tokenizer_hash", "dtype", "class_names"):
            if h.get(key) != first.get(key):
                raise NarError(f"token cache shard {out / name} differs from {out / shards[0]} in {key}")
    index = {k: v for k, v in first.items() if k not in ("n", "rank", "first_index")}
    index.update(sharded=True, shards=[{"dir": name, "n": int(h["n"])} for name, h in zip(shards, headers)],
                 n=sum(int(h["n"]) for h in headers))
    atomic_write_text(out / INDEX, json.dumps(index, indent=2))
    return out


class ShardedTokens:
    """(N, h, w) tokens spread over several memory-mapped arrays, indexed as one."""

    def __init__(self, parts: list[np.ndarray]):
        self.parts = parts
        self.offsets = np.cumsum([0] + [p.shape[0] for p in parts])
        self.shape = (int(self.offsets[-1]), *parts[0].shape[1:])
        self.dtype = parts[0].dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            index = int(index) + (len(self) if index < 0 else 0)
            part = int(np.searchsorted(self.offsets, index, side="right") - 1)
            return self.parts[part][index - self.offsets[part]]
        idx = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index)
        out = np.empty((len(idx), *self.shape[1:]), dtype=self.dtype)
        which = np.searchsorted(self.offsets, idx, side="right") - 1
        for part in np.unique(which):
            sel = which == part
            out[sel] = self.parts[part][idx[sel] - self.offsets[part]]
        return out

    def __array__(self, dtype=None, copy=None):
        out = np.concatenate([np.asarray(p) for p in self.parts])
        return out if dtype is None else out.astype(dtype)


@dataclass
class TokenCache:
    path: Path
    header: dict[str, Any]
    tokens: np.ndarray   # (N, h, w), memory-mapped (a ShardedTokens for a sharded cache)
    labels: np.ndarray   # (N,)

    @classmethod
    def open(cls, path: str | Path, tokenizer_hash: str | None = None,
             allow_empty: bool = False) -> "TokenCache":
        path = Path(path)
        if not path.exists():
            raise NarError(f"token cache not found: {path}")
        if (path / INDEX).is_file():
            return cls._open_sharded(path, tokenizer_hash)
        header_file = path / "header.json"
        if not header_file.is_file():
            if any(path.glob("rank-*/header.json")) or any(path.glob("rank-*")):
                raise NarError(f"{path} holds token cache shards but no {INDEX}: the distributed "
                               "encode did not finish; run it again into an empty --out")
            raise NarError(f"{path} is not a nar token cache (no header.json); "
                           "make one with `nar tokenizer encode`")
        header = read_json(header_file)
        if header.get("format") != FORMAT:
            raise NarError(f"{path} is not a nar token cache")
        if int(header.get("n", 0)) == 0 and not allow_empty:
            raise NarError(f"token cache {path} is empty")
        if tokenizer_hash is not None and header.get("tokenizer_hash") != tokenizer_hash:
            raise NarError(f"token cache {path} was made by tokenizer {header.get('tokenizer_hash')}, "
                           f"not by {tokenizer_hash}")
        tokens = np.load(path / "tokens.npy", mmap_mode="r")
        labels = np.load(path / "labels.npy")
        if tokens.shape[0] != header["n"] or list(tokens.shape[1:]) != list(header["grid"]):
            raise NarError(f"token cache {path} does not match its header")
        return cls(path, header, tokens, labels)

    @classmethod
    def _open_sharded(cls, path: Path, tokenizer_hash: str | None) -> "TokenCache":
        index = read_json(path / INDEX)
        if index.get("format") != FORMAT or not index.get("shards"):
            raise NarError(f"{path} is not a nar token cache")
        parts = [cls.open(path / s["dir"], tokenizer_hash, allow_empty=True) for s in index["shards"]]
        parts = [p for p in parts if len(p)]
        if not parts:
            raise NarError(f"token cache {path} is empty")
        if sum(len(p) for p in parts) != int(index["n"]):
            raise NarError(f"token cache {path} does not match its index")
        tokens = ShardedTokens([p.tokens for p in parts])
        labels = np.concatenate([p.labels for p in parts])
        header = {k: v for k, v in index.items() if k not in ("shards", "sharded")}
        header["shards"] = len(index["shards"])
        return cls(path, header, tokens, labels)

    def __len__(self) -> int:
        return self.tokens.shape[0]

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.header["grid"])

    @property
    def codebook_size(self) -> int:
        return int(self.header["codebook_size"])

    @property
    def class_names(self) -> list[str]:
        return list(self.header.get("class_names") or [])

    @property
    def labelled(self) -> bool:
        return bool((self.labels >= 0).any())

    def advance_to(self, step: int) -> None:
        """A cache is fixed; a pool of fresh renders (`nar.train.fresh_tokens`) grows here."""

    def close(self) -> None:
        """Nothing to stop (the pool of fresh renders stops its workers here)."""

    def batch(self, batch_size: int, generator: torch.Generator,
              keep: slice | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A random batch (with replacement) drawn from ``generator``: (B, h, w) long, (B,) long.
        ``keep`` reads only that part of the drawn batch (a rank's share of the global batch)."""
        idx = torch.randint(len(self), (batch_size,), generator=generator).numpy()
        if keep is not None:
            idx = idx[keep]
            batch_size = len(idx)
        order = np.argsort(idx)  # memmap reads in file order
        tokens = np.empty((batch_size, *self.grid), dtype=np.int64)
        tokens[order] = self.tokens[idx[order]]
        return torch.from_numpy(tokens), torch.from_numpy(self.labels[idx].astype(np.int64))
