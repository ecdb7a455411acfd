"""Pre-norm transformer pieces: multi-head attention with per-head rotary, feed-forward,
blocks and stacks. Sequences are (B, N, D); rotary frequencies come from outside
(``nar.nn.rotary``) so one embedding can serve every layer of a level.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from nar.nn.rotary import apply_rotary

__all__ = ["Attention", "FeedForward", "TransformerBlock", "TransformerStack", "start_new_blocks_as_identity"]


class Attention(nn.Module):
    """Multi-head self-attention on (B, N, dim) via ``F.scaled_dot_product_attention``
    (flash / memory-efficient kernels where the device and dtype allow).

    Rotary is applied to q and k after the head split, so every head gets positions.
    Bidirectional (the hourglass and every grid model attend both ways).
    """

    def __init__(self, dim: int, heads: int = 8, dim_head: int = 64, dropout: float = 0.0):
        super().__init__()
        self.heads, self.dim_head, self.dropout = heads, dim_head, dropout
        inner = heads * dim_head
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x: Tensor, rotary_freqs: Tensor | tuple[Tensor, Tensor] | None = None) -> Tensor:
        q, k, v = rearrange(self.to_qkv(x), "b n (qkv h d) -> qkv b h n d", qkv=3, h=self.heads)
        if rotary_freqs is not None:
            q, k = apply_rotary(q, rotary_freqs), apply_rotary(k, rotary_freqs)
        out = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))


class FeedForward(nn.Module):
    """Position-wise MLP: dim -> mult*dim -> dim with GELU."""

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0):
        super().__init__()
        hidden = int(dim * mult)
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class TransformerBlock(nn.Module):
    """x + Attn(LN(x)), then x + FF(LN(x))."""

    def __init__(self, dim: int, heads: int = 8, dim_head: int = 64, ff_mult: int = 4,
                 dropout: float = 0.0):
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dim_head, dropout=dropout)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, ff_mult, dropout=dropout)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, rotary_freqs: Tensor | None = None) -> Tensor:
        x = x + self.resid_dropout(self.attn(self.attn_norm(x), rotary_freqs))
        return x + self.resid_dropout(self.ff(self.ff_norm(x)))

    def start_as_identity(self) -> None:
        """Zero both residual branches' output layers: the block passes its input through
        unchanged until training moves them (gradients still reach those layers)."""
        with torch.no_grad():
            self.attn.to_out.weight.zero_()
            self.ff.net[-1].weight.zero_()
            self.ff.net[-1].bias.zero_()


class TransformerStack(nn.Module):
    """``depth`` pre-norm blocks followed by a final LayerNorm (pre-norm residual streams
    grow with depth; the final norm hands the next layer well-scaled features)."""

    def __init__(self, dim: int, depth: int, heads: int = 8, dim_head: int = 64,
                 ff_mult: int = 4, dropout: float = 0.0, final_norm: bool = True):
        super().__init__()
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, heads, dim_head, ff_mult, dropout)
            for _ in range(depth))
        self.norm = nn.LayerNorm(dim) if final_norm else nn.Identity()

    def forward(self, x: Tensor, rotary_freqs: Tensor | None = None) -> Tensor:
        for block in self.blocks:
            x = block(x, rotary_freqs)
        return self.norm(x)


def start_new_blocks_as_identity(module: nn.Module, loaded: set[str]) -> list[str]:
    """After loading a parent's weights (``loaded``: the state-dict names that came from it), make
    every `TransformerBlock` that got none of them the identity (`TransformerBlock.start_as_identity`),
    so a network that adds blocks to its parent's (e.g. full-resolution layers around an
    hourglass's valley) starts by computing exactly what the parent did, rather than from a
    random perturbation of it. Returns the names of those blocks."""
    new = []
    for name, block in module.named_modules():
        if isinstance(block, TransformerBlock):
            keys = [f"{name}.{k}" for k in block.state_dict()]
            if not any(k in loaded for k in keys):
                block.start_as_identity()
                new.append(name)
    return new
