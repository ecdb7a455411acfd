"""Analytic FLOP counts for transformer stacks, shared by the priors and the hourglass.

Convention (as ``torch.utils.flop_counter``): matmuls only, 2·m·n·k each — q/k/v and output
projections, attention scores and weighted sums, feed-forward, logits heads, resampling
layers. Norms, softmax, activations, rotary, embedding lookups and sampling are left out
(a few % at the sizes nar runs).
"""
from __future__ import annotations


def block_flops(dim: int, inner: int, hidden: int) -> tuple[int, int]:
    """One pre-norm block: (FLOPs per token without attention scores, FLOPs per (query, key)
    pair). ``inner`` = heads · dim_head, ``hidden`` = the feed-forward width."""
    per_token = 2 * dim * 3 * inner + 2 * inner * dim + 2 * 2 * dim * hidden
    per_pair = 2 * 2 * inner  # QKᵀ and AV
    return per_token, per_pair


def transformer_flops(n: int, dim: int, depth: int, inner: int, hidden: int, head_positions: int = 0,
                      head_out: int = 0) -> int:
    """One full (non-causal) forward of ``depth`` blocks over n tokens, plus a logits head of
    width ``head_out`` on ``head_positions`` of them."""
    per_token, per_pair = block_flops(dim, inner, hidden)
    return depth * (n * per_token + n * n * per_pair) + 2 * head_positions * dim * head_out
