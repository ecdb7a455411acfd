"""Training a prior on a token cache (or a pool of fresh renders' tokens): the prior's loss
plugged into the shared loop."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from nar.core.images import save_grid
from nar.data.tokens import TokenCache
from nar.priors.base import Prior
from nar.train import distributed


class PriorTask:
    def __init__(self, prior: Prior, cache: TokenCache, batch_size: int,
                 decode: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 snapshot_n: int = 8, snapshot_steps: int | None = None,
                 window: tuple[int, int] | None = None):
        self.model = prior
        self.window = window            # train on random windows of this size (None: whole grids)
        self.cache = cache
        self.batch_size = batch_size
        self.decode = decode            # tokens (B,h,w) -> images (B,3,H,W) in [-1,1], if a tokenizer is at hand
        self.snapshot_n = snapshot_n
        self.snapshot_steps = snapshot_steps
        self.conditional = prior.num_classes > 0

    def optimizers(self) -> dict[str, list]:
        return {"prior": list(self.model.parameters())}

    def checkpoint_meta(self) -> dict[str, Any]:
        meta = self.model.meta()
        meta.update(tokenizer_hash=self.cache.header.get("tokenizer_hash"),
                    tokenizer_path=self.cache.header.get("tokenizer_path"),
                    class_names=self.cache.class_names,
                    token_cache=str(self.cache.path),
                    data_grid=list(self.cache.grid))   # the grid a sample should have by default
        return meta

    def train_step(self, step: int, generator: torch.Generator, optimize) -> dict[str, float]:
        self.cache.advance_to(step)        # fresh renders: the grids this step may draw are made
        world = distributed.world_size()   # the global batch is drawn; this rank reads its part
        part = distributed.part(self.batch_size * world)
        tokens, labels = self.cache.batch(self.batch_size * world, generator, keep=part)
        extra = {}
        if self.window is not None:
            tokens, top = self._windows(tokens, generator, self.batch_size * world, part)
            if getattr(self.model, "grid_rows", 0):  # absolute rows: the model is told where each window sits
                extra["row_origin"] = top
        device = self.model.device
        tokens = tokens.to(device)
        cond = labels.to(device) if self.conditional else None
        if cond is not None:
            # unlabelled images (label -1, e.g. in the root of an image folder) train as the null class
            cond = torch.where(cond < 0, torch.full_like(cond, self.model.null_class), cond)
        parts = self.model.loss(tokens, cond, **extra)
        optimize("prior", parts["loss"])
        return {k: float(v.detach()) for k, v in parts.items()}

    def _windows(self, tokens: torch.Tensor, generator: torch.Generator, global_batch: int,
                 part: slice) -> tuple[torch.Tensor, torch.Tensor]:
        """A random window of each grid (Taming's crops) and the row each starts at; the offsets
        are drawn for the global batch, so every rank cuts its part of the same batch."""
        (h, w), (wh, ww) = tokens.shape[1:], self.window
        top = torch.randint(h - wh + 1, (global_batch,), generator=generator)[part]
        left = torch.randint(w - ww + 1, (global_batch,), generator=generator)[part]
        windows = [grid[t:t + wh, s:s + ww] for grid, t, s in zip(tokens, top.tolist(), left.tolist())]
        return torch.stack(windows), top

    @torch.no_grad()
    def snapshot(self, model: Prior, step: int, out_dir: Path) -> None:
        g = torch.Generator(device=model.device).manual_seed(0)
        cond = None
        if self.conditional:
            cond = torch.arange(self.snapshot_n, device=model.device) % model.num_classes
        out = model.sample(self.snapshot_n, self.window or self.cache.grid, steps=self.snapshot_steps,
                           cond=cond, generator=g)
        if self.decode is not None:
            save_grid(self.decode(out.tokens), out_dir / f"step_{step:07d}.png")
