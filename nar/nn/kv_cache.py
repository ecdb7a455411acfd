"""Static KV cache and a fast inference decoder for pre-norm causal transformers
(the gpt-fast / LlamaGen recipe, written for nar).

Training keeps x-transformers; sampling reads the *same* weights out of an
``x_transformers.Decoder`` (``CachedDecoder.from_x_transformers``) into a lean stack that

* keeps keys / values in one preallocated tensor per decoder, ``(depth, B, 2, H, L, dh)``,
  written in place at each position (rotary applied once, when the key is written; the
  cache is never concatenated or re-rotated);
* fuses the q / k / v projections into one matmul per layer and rotates q and k together
  against precomputed tables (``qk·cos + swap_pairs(qk)·sin±``: no trigonometry per step);
* attends either over the filled prefix only (``attend="prefix"``: cheapest in eager mode)
  or over the whole preallocated length with a mask (``attend="full"``: static shapes, what
  ``torch.compile`` and CUDA graphs need).

It is inference only (no dropout, no gradients) and matches the x-transformers forward to
float rounding. Layout read from the Decoder (x-transformers 2.x, default options): per
layer ``[norm, Attention(to_q, to_k, to_v, to_out), residual]`` then ``[norm,
FeedForward(Linear, GELU, Dropout, Linear), residual]``; norms are ``LayerNorm`` with a
``gamma`` (plus one with ``unit_offset``); partial rotary over the first ``rotary_pos_emb.inv_freq`` pairs, interleaved.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["StaticKVCache", "CachedDecoder", "rotary_tables"]


class StaticKVCache:
    """Keys and values of every layer for ``batch`` sequences of up to ``length`` positions:
    ``kv`` is ``(depth, batch, 2, heads, length, dim_head)``, allocated once. ``filled`` is the
    number of leading positions written (the caller's bookkeeping)."""

    def __init__(self, depth: int, batch: int, heads: int, length: int, dim_head: int,
                 device: torch.device | str, dtype: torch.dtype):
        self.kv = torch.zeros(depth, batch, 2, heads, length, dim_head, device=device, dtype=dtype)
        self.filled = 0

    @property
    def length(self) -> int:
        return self.kv.shape[4]

    @property
    def batch(self) -> int:
        return self.kv.shape[1]

    def reset(self) -> "StaticKVCache":
        self.filled = 0  # stale entries past ``filled`` are never attended to
        return self


def rotary_tables(inv_freq: Tensor, dim_head: int, length: int) -> tuple[Tensor, Tensor]:
    """cos / sin tables (length, dim_head) for x-transformers' interleaved partial rotary:
    pair (2i, 2i+1) of the first ``2·len(inv_freq)`` features turns by position × inv_freq[i];
    the remaining features pass through (cos 1, sin 0)."""
    t = torch.arange(length, device=inv_freq.device, dtype=torch.float32)
    angles = torch.outer(t, inv_freq.float()).repeat_interleave(2, dim=-1)  # (L, rot)
    rot = angles.shape[-1]
    cos = torch.ones(length, dim_head, device=inv_freq.device)
    sin = torch.zeros(length, dim_head, device=inv_freq.device)
    cos[:, :rot], sin[:, :rot] = angles.cos(), angles.sin()
    return cos, sin


def _gamma(norm) -> Tensor:
    """The effective scale of an x-transformers LayerNorm (``unit_offset``: stored as gamma - 1)."""
    return norm.gamma.detach() + float(getattr(norm, "unit_offset", False))


class CachedDecoder:
    """Inference-only causal decoder over a :class:`StaticKVCache`.

    ``forward(x, cache)`` takes the embeddings ``(B, m, dim)`` of positions
    ``cache.filled … cache.filled + m - 1``, writes their keys / values and returns the
    final-normed hidden states ``(B, m, dim)``; ``step(x, cache_kv, pos)`` is the one-position,
    static-shape variant (position as a tensor, attention over the whole cache with a mask),
    the function to hand to ``torch.compile``.

    Not an ``nn.Module`` on purpose: it holds tensors derived from a model's parameters and
    must never appear in that model's state dict.
    """

    def __init__(self, layers: list[dict[str, Tensor]], final_gamma: Tensor, heads: int, dim_head: int,
                 inv_freq: Tensor | None, eps: float = 1e-5):
        self.layers, self.final_gamma = layers, final_gamma
        self.heads, self.dim_head, self.eps = heads, dim_head, eps
        self.dim = final_gamma.shape[0]
        self.inv_freq = inv_freq
        self.scale = dim_head ** -0.5
        self._tables: tuple[int, Tensor, Tensor] | None = None
        self._masks: dict[int, Tensor] = {}

    # ---- built from x-transformers ---------------------------------------------------------
    @classmethod
    @torch.no_grad()
    def from_x_transformers(cls, decoder, heads: int, dim_head: int,
                            dtype: torch.dtype | None = None) -> "CachedDecoder":
        """Read the weights of an ``x_transformers.Decoder`` (default options). ``dtype``
        casts them once (e.g. bf16 on CUDA, instead of autocast re-casting at every op)."""
        blocks = list(decoder.layers)
        if len(blocks) % 2:
            raise ValueError("expected alternating attention / feed-forward blocks")
        rotary = getattr(decoder, "rotary_pos_emb", None)
        inv_freq = rotary.inv_freq.detach().float() if rotary is not None else None
        inner = heads * dim_head
        dt = dtype or decoder.final_norm.gamma.dtype
        layers = []
        for i in range(0, len(blocks), 2):
            (a_norm, *_), attn, _ = blocks[i]
            (f_norm, *_), ff, _ = blocks[i + 1]
            wq, wk, wv = attn.to_q.weight, attn.to_k.weight, attn.to_v.weight
            if wq.shape[0] != inner or wk.shape[0] != inner:
                raise ValueError("heads * dim_head does not match the attention projections")
            parts = [wq, wk, wv]
            lin1, lin2 = ff.ff[0][0], ff.ff[2]
            layers.append({
                "g1": _gamma(a_norm).to(dt), "wqkv": torch.cat(parts).to(dt).contiguous(),
                "wo": attn.to_out.weight.to(dt),
                "g2": _gamma(f_norm).to(dt), "w1": lin1.weight.to(dt), "b1": lin1.bias.to(dt),
                "w2": lin2.weight.to(dt), "b2": lin2.bias.to(dt),
            })
        return cls(layers, _gamma(decoder.final_norm).to(dt), heads, dim_head, inv_freq)

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def dtype(self) -> torch.dtype:
        return self.final_gamma.dtype

    @property
    def device(self) -> torch.device:
        return self.final_gamma.device

    def new_cache(self, batch: int, length: int) -> StaticKVCache:
        return StaticKVCache(self.depth, batch, self.heads, length, self.dim_head, self.device, self.dtype)

    def tables(self, length: int) -> tuple[Tensor, Tensor]:
        """cos / sin± (x-transformers' rotate-half as a pair swap: -sin at even features, +sin
        at odd ones), tiled for [q heads | k heads]: (length, 2·inner), in the model dtype."""
        if self._tables is None or self._tables[0] < length:
            if self.inv_freq is None:
                return None, None
            cos, sin = rotary_tables(self.inv_freq.to(self.device), self.dim_head, length)
            sin[:, 0::2] *= -1.0
            cos, sin = (t.repeat(1, 2 * self.heads).to(self.dtype) for t in (cos, sin))
            self._tables = (length, cos, sin)
        return self._tables[1][:length], self._tables[2][:length]

    def causal_mask(self, length: int) -> Tensor:
        """(length, length) bool, row p allows keys 0 … p."""
        if length not in self._masks:
            self._masks[length] = torch.ones(length, length, dtype=torch.bool, device=self.device).tril()
        return self._masks[length]

    # ---- the math ------------------------------------------------------------------------
    def _qkv(self, layer: dict, x: Tensor, cos: Tensor | None, sin: Tensor | None) -> tuple[Tensor, Tensor]:
        """Normed x -> rotated [q | k] (B, m, 2·inner) and v (B, m, inner)."""
        inner = self.heads * self.dim_head
        y = F.linear(F.layer_norm(x, (self.dim,), layer["g1"], None, self.eps), layer["wqkv"])
        if cos is None:
            return y[..., :2 * inner], y[..., 2 * inner:3 * inner]
        qk = y[..., :2 * inner]
        qk = torch.addcmul(qk * cos, qk.unflatten(-1, (-1, 2)).flip(-1).flatten(-2), sin)
        return qk, y[..., 2 * inner:3 * inner]

    def _attend_write(self, kv: Tensor, qk: Tensor, v: Tensor, start: int, stop: int,
                      mask: Tensor | None, full: bool) -> Tensor:
        """Write k, v of positions start … stop-1 into ``kv`` (B, 2, H, L, dh) and attend."""
        b, m, _ = qk.shape
        qk = qk.view(b, m, 2, self.heads, self.dim_head)
        kv[:, 0, :, start:stop] = qk[:, :, 1].transpose(1, 2)
        kv[:, 1, :, start:stop] = v.view(b, m, self.heads, self.dim_head).transpose(1, 2)
        q = qk[:, :, 0].transpose(1, 2)
        end = kv.shape[3] if full else stop
        out = F.scaled_dot_product_attention(q, kv[:, 0, :, :end], kv[:, 1, :, :end], attn_mask=mask,
                                             scale=self.scale)
        return out.transpose(1, 2).reshape(b, m, -1)

    def _mlp(self, layer: dict, x: Tensor) -> Tensor:
        h = F.gelu(F.linear(F.layer_norm(x, (self.dim,), layer["g2"], None, self.eps), layer["w1"], layer["b1"]))
        return x + F.linear(h, layer["w2"], layer["b2"])

    def forward(self, x: Tensor, cache: StaticKVCache, full: bool = False) -> Tensor:
        """Feed positions ``cache.filled …`` (x: (B, m, dim)); returns final-normed hidden states.
        ``full``: attend over the whole cache with a mask (the static-shape path, eagerly)."""
        b, m, _ = x.shape
        start = cache.filled
        stop = start + m
        if stop > cache.length:
            raise ValueError(f"the cache holds {cache.length} positions, asked to fill up to {stop}")
        if b != cache.batch:
            raise ValueError(f"batch {b} does not match the cache's {cache.batch}")
        x = x.to(self.dtype)
        cos, sin = self.tables(cache.length)
        if cos is not None:
            cos, sin = cos[start:stop], sin[start:stop]
        if full:
            mask = self.causal_mask(cache.length)[start:stop]
        elif m == 1:
            mask = None  # one query sees the whole filled prefix
        else:
            mask = self.causal_mask(stop)[start:stop]
        for i, layer in enumerate(self.layers):
            qk, v = self._qkv(layer, x, cos, sin)
            x = x + F.linear(self._attend_write(cache.kv[i], qk, v, start, stop, mask, full), layer["wo"])
            x = self._mlp(layer, x)
        cache.filled = stop
        return F.layer_norm(x, (self.dim,), self.final_gamma, None, self.eps)

    def step(self, x: Tensor, kv: Tensor, pos: Tensor) -> Tensor:
        """One position ``pos`` (a 1-element long tensor) for x (B, 1, dim): static shapes
        throughout (cache written with ``index_copy_``, attention over the whole length with a
        mask), so ``torch.compile`` (and CUDA graphs) can take it. Returns (B, 1, dim)."""
        b = x.shape[0]
        length = kv.shape[4]  # (depth, B, 2, H, L, dh)
        x = x.to(self.dtype)
        mask = self.causal_mask(length).index_select(0, pos)  # (1, L)
        cos = sin = None
        if self.inv_freq is not None:
            cos, sin = self.tables(length)
            cos, sin = cos.index_select(0, pos), sin.index_select(0, pos)
        for i, layer in enumerate(self.layers):
            qk, v = self._qkv(layer, x, cos, sin)
            qk = qk.view(b, 1, 2, self.heads, self.dim_head)
            layer_kv = kv[i]
            layer_kv[:, 0].index_copy_(2, pos, qk[:, :, 1].transpose(1, 2))
            layer_kv[:, 1].index_copy_(2, pos, v.view(b, 1, self.heads, self.dim_head).transpose(1, 2))
            out = F.scaled_dot_product_attention(qk[:, :, 0].transpose(1, 2), layer_kv[:, 0], layer_kv[:, 1],
                                                 attn_mask=mask, scale=self.scale)
            x = x + F.linear(out.transpose(1, 2).reshape(b, 1, -1), layer["wo"])
            x = self._mlp(layer, x)
        return F.layer_norm(x, (self.dim,), self.final_gamma, None, self.eps)
