"""maskgit's raster layout (`nar.priors.maskgit`, "Raster layout"): the ar prior's network, its
tensors under the same names, run without its causal mask, and the start from a trained ar."""
from __future__ import annotations

import torch
from torch import nn
from x_transformers import Encoder

from nar.core.errors import NarError
from nar.nn.positions import resize_table

__all__ = ["RasterLayout"]


class RasterLayout:
    """Mixed into `MaskGITPrior`: needs its ``cfg``, ``train_grid``, ``tok_emb``, ``cls_emb``,
    ``_with_mask_rows`` and ``_load_adopted``."""

    def _build_raster(self, dim: int, dim_head: int) -> None:
        """ar's tables and layers (`nar.priors.ar`), named as there but for ``encoder`` (ar: ``layers``)."""
        cfg = self.cfg
        self.row_emb = nn.Embedding(self.train_grid[0], dim)
        self.col_emb = nn.Embedding(self.train_grid[1], dim)
        nn.init.normal_(self.row_emb.weight, std=0.02)
        nn.init.normal_(self.col_emb.weight, std=0.02)
        self.emb_dropout = nn.Dropout(cfg.dropout)
        self.encoder = Encoder(dim=dim, depth=cfg.depth, heads=cfg.heads, attn_dim_head=dim_head,
                               ff_mult=cfg.ff_mult, rotary_pos_emb=True, attn_dropout=cfg.dropout,
                               ff_dropout=cfg.dropout, attn_flash=True)

    def _raster(self, ids: torch.Tensor, class_ids: torch.Tensor, width: int) -> torch.Tensor:
        """(B, N) ids -> (B, N, dim) features; position k: the token of cell k - 1 (the class at 0),
        the row and column of cell k (Raster layout)."""
        x = torch.cat([self.cls_emb(class_ids)[:, None], self.tok_emb(ids[:, :-1])], dim=1)
        k = torch.arange(ids.shape[1], device=ids.device)
        x = x + self.row_emb(k // width) + self.col_emb(k % width)
        return self.encoder(self.emb_dropout(x))

    def _adopt_ar(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """From an ar of the same width and depth (``pos = "rotary+2d"``, a class start token, a plain
        token table): its layers, tables and head as they are (row / column tables stretched to
        this grid when their lengths differ), a ``[MASK]`` row of the mean token embedding, and a
        zero ``[MASK]`` output row (Raster layout)."""
        config = meta.get("config") or {}
        if config.get("pos", "rotary+2d") != "rotary+2d" or config.get("first_token", "class") != "class" \
                or config.get("codebook_init", False):
            raise NarError("maskgit's raster layout starts from an ar with rotary+2d positions, the class as its "
                           "start token and a plain token table (codebook_init = false)")
        mapped = self._with_mask_rows(tensors["tok_emb.weight"], tensors["head.weight"], tensors["head.bias"])
        mapped |= {"cls_emb.weight": tensors["cls_emb.weight"],
                   "row_emb.weight": resize_table(tensors["row_emb.weight"].float(), self.row_emb.num_embeddings),
                   "col_emb.weight": resize_table(tensors["col_emb.weight"].float(), self.col_emb.num_embeddings)}
        mapped |= {"encoder." + k[len("layers."):]: v for k, v in tensors.items() if k.startswith("layers.")}
        self._load_adopted(mapped, "ar", "give the raster layout the ar's dim, depth, heads (dim / heads = its "
                           "dim_head) and ff_mult, the same tokenizer and the same classes")
