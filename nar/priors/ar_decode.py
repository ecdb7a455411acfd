"""The `ar` prior's inference state: its weights read into ``nar.nn.kv_cache``'s lean decoder,
with the embedding tables folded once (see `nar.priors.ar`'s docstring for the scan it serves)."""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from nar.nn.kv_cache import CachedDecoder, StaticKVCache


class FastARDecoder:
    """Inference state of an ARPrior: the lean decoder (same weights, read out of the
    x-transformers layers), embedding tables folded once (token table after the code-vector
    projection, row + column positions of the window width) and the logits head."""

    def __init__(self, prior: ARPrior, dtype: torch.dtype | None):
        with torch.no_grad():
            self.decoder = CachedDecoder.from_x_transformers(prior.layers, prior.cfg.heads, prior.cfg.dim_head,
                                                             dtype=dtype)
            dt = self.decoder.dtype
            tok = prior.tok_emb
            table = tok[1](tok[0].weight) if isinstance(tok, nn.Sequential) else tok.weight
            self.tok_table = table.detach().to(dt)
            self.cls_table = prior.cls_emb.weight.detach().to(dt)
            self.head_w, self.head_b = prior.head.weight.detach().to(dt), prior.head.bias.detach().to(dt)
        self.prior = prior
        self.train_grid = prior.train_grid
        self.use_2d = prior.use_2d
        self.pos_table: torch.Tensor | None = None
        self.width = None
        self.compiled = False
        self._compiled_fn = None
        self._use_compiled = False
        self._static_caches: dict[tuple[int, int], StaticKVCache] = {}
        self.key = None

    def __deepcopy__(self, memo):  # a deep-copied prior (EMA, snapshots) rebuilds its own
        return None

    def prepare(self, width: int, compiled: bool) -> None:
        """Row + column embeddings of every window position for rows of ``width`` cells (of every
        row of the training grid with absolute rows: a window at row id r reads from r·width on)."""
        if self.width != width:
            length = (self.prior.grid_rows or self.train_grid[0]) * width
            if self.use_2d:
                with torch.no_grad():
                    k = torch.arange(length, device=self.tok_table.device)
                    p = self.prior
                    self.pos_table = (p.row_emb(k // width) + p.col_emb(k % width)).to(self.tok_table.dtype)
            else:
                self.pos_table = torch.zeros(length, self.tok_table.shape[1], device=self.tok_table.device,
                                             dtype=self.tok_table.dtype)
            self.width = width
        self._use_compiled = compiled and self.compiled

    def new_cache(self, batch: int, length: int) -> StaticKVCache:
        """A fresh cache, except on the compiled path: there one cache per (batch, length) lives
        as long as this decoder, at a fixed address (marked static, so that CUDA graphs can
        replay the in-place writes instead of skipping graphs for a mutated input)."""
        if not self._use_compiled:
            return self.decoder.new_cache(batch, length)
        cache = self._static_caches.get((batch, length))
        if cache is None:
            cache = self._static_caches[(batch, length)] = self.decoder.new_cache(batch, length)
            if cache.kv.is_cuda:
                torch._dynamo.mark_static_address(cache.kv)
        return cache.reset()  # entries past ``filled`` are masked out

    def embed(self, ids: torch.Tensor, prev: torch.Tensor, offset: int, row0: int = 0) -> torch.Tensor:
        x = F.embedding(prev, self.tok_table)
        if offset == 0:
            x = torch.cat([self.cls_table[ids][:, None], x], dim=1)
        start = row0 * self.width + offset
        return x + self.pos_table[start:start + x.shape[1]]

    def logits(self, ids: torch.Tensor, prev: torch.Tensor, cache: StaticKVCache, row0: int = 0) -> torch.Tensor:
        """Feed positions ``cache.filled …`` (class token at 0, then ``prev``) of a window whose
        first row has row id ``row0``; float logits at the last one."""
        offset = cache.filled
        if self._use_compiled and offset > 0 and prev.shape[1] == 1:
            self.decoder.tables(cache.length)  # built outside the traced step
            self.decoder.causal_mask(cache.length)
            pos = torch.full((1,), offset, dtype=torch.long, device=prev.device)
            first = self._compiled_fn is None
            try:
                out = self._step_fn()(prev, cache.kv, pos)
            except Exception as e:  # noqa: BLE001 - a compiler that cannot build: the eager step, said once
                if not first:
                    raise
                warnings.warn(f"ar: torch.compile of the decode step failed ({type(e).__name__}: {e}); "
                              "sampling eagerly", stacklevel=2)
                self.compiled = self._use_compiled = False
                self._compiled_fn = None
                out = self._step(prev, cache.kv, pos)
            cache.filled = offset + 1
            return out
        hidden = self.decoder.forward(self.embed(ids, prev, offset, row0), cache)
        return F.linear(hidden[:, -1], self.head_w, self.head_b).float()

    def _step(self, prev: torch.Tensor, kv: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """One token (B, 1) at position ``pos``: embed, decode over the static cache, logits."""
        x = F.embedding(prev, self.tok_table) + self.pos_table.index_select(0, pos)
        hidden = self.decoder.step(x, kv, pos)
        return F.linear(hidden[:, -1], self.head_w, self.head_b).float()

    def _step_fn(self):
        if self._compiled_fn is None:
            cuda = self.tok_table.device.type == "cuda"
            # default dynamic=None: one recompile with dynamic sizes after the first new grid or
            # batch, then each shape only records its own CUDA graph
            self._compiled_fn = torch.compile(self._step, mode="reduce-overhead" if cuda else None, fullgraph=True)
        return self._compiled_fn
