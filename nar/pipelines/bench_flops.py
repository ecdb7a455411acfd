"""Analytic FLOPs per image for each prior, and the decoder's FLOPs counted on the meta device.

Convention (as ``torch.utils.flop_counter`` and ``nar.nn.hourglass.count_flops``): matmuls
only, 2·m·n·k each — projections, attention scores and weighted sums, feed-forward, the
logits head, resampling layers. Norms, softmax, activations, rotary, embedding lookups and
the sampling itself are left out (a few % at these sizes).

Why the counts differ so much between priors:

- ``ar`` with a KV cache feeds each of the N = h·w positions once; position p attends to
  its p+1 predecessors. In total that is one *causal* forward over N tokens
  (N·per-token work + half of a full N² attention), spread over N sequential steps of one
  token each, each followed by the logits head for that one position.
- ``maskgit`` runs the full bidirectional network over all N tokens every step:
  forward FLOPs × steps.
- ``sundae`` likewise (forward FLOPs of the hourglass + head) × steps actually run; the
  hourglass runs most of its layers on the (h/s)×(w/s) grid, so one forward costs well
  under a flat transformer's.

A prior can supply its own count with a ``flops_per_image(grid, steps_run=..., forward_passes=...)``
method; otherwise the formulas below are used for the three built-in priors, and the
count is reported as unavailable for any other.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def _block_parts(dim: int, inner: int, hidden: int) -> tuple[int, int]:
    """Per-token matmul FLOPs of one pre-norm block without attention scores (q/k/v/out
    projections + feed-forward), and the attention FLOPs per (query, key) pair."""
    per_token = 2 * dim * 3 * inner + 2 * inner * dim + 2 * 2 * dim * hidden
    per_pair = 2 * 2 * inner  # QKᵀ and AV
    return per_token, per_pair


def transformer_forward_flops(n: int, dim: int, depth: int, inner: int, hidden: int,
                              head_out: int) -> int:
    """One full (non-causal) forward over n tokens plus a logits head on every token."""
    per_token, per_pair = _block_parts(dim, inner, hidden)
    return depth * (n * per_token + n * n * per_pair) + 2 * n * dim * head_out


def ar_flops(prior, grid: tuple[int, int]) -> int:
    """KV-cached raster sampling of one h×w grid by ``nar.priors.ar.ARPrior`` (no inpainting).

    Replays the sampler's schedule: which positions each call feeds and how many cached keys
    they attend to — including Taming's sliding window when the grid is larger than the
    training grid (a new window re-feeds its raster prefix)."""
    cfg = prior.cfg
    h, w = grid
    th, tw = prior.train_grid
    wh, ww = min(h, th), min(w, tw)
    dim, inner, hidden = cfg.dim, cfg.heads * cfg.dim_head, cfg.ff_mult * cfg.dim
    per_token, per_pair = _block_parts(dim, inner, hidden)
    code_dim = cfg.code_dim if getattr(cfg, "codebook_init", False) else 0
    embed = 2 * code_dim * dim  # the code-vector projection, when the prior has one
    head = 2 * dim * prior.codebook_size
    random_first = getattr(cfg, "first_token", "class") == "random"
    total = 0
    caches: dict[tuple[int, int], int] = {}
    row_origin = None
    for k in range(h * w):
        if k == 0 and random_first:
            continue
        i, j = divmod(k, w)
        r0 = min(max(i - wh // 2, 0), h - wh)
        c0 = min(max(j - ww // 2, 0), w - ww)
        if r0 != row_origin:
            caches.clear()
            row_origin = r0
        p = (i - r0) * ww + (j - c0)
        fed = caches.get((r0, c0), 0)
        m = p - fed + 1                  # positions fed … p (the class token counts at 0)
        tokens_in = m - (1 if fed == 0 else 0)
        total += cfg.depth * (m * per_token + m * (p + 1) * per_pair) + tokens_in * embed + head
        caches[(r0, c0)] = p + 1
    return total


def maskgit_forward_flops(prior, grid: tuple[int, int], head_positions: int | None = None) -> int:
    """One bidirectional forward over all h*w tokens; the logits head on ``head_positions``
    of them (default: all)."""
    cfg = prior.cfg
    n = grid[0] * grid[1]
    dim_head = cfg.dim // cfg.heads
    body = transformer_forward_flops(n, cfg.dim, cfg.depth, cfg.heads * dim_head, cfg.ff_mult * cfg.dim, 0)
    m = n if head_positions is None else head_positions
    return body + 2 * m * cfg.dim * (prior.codebook_size + 1)


def maskgit_sampling_flops(prior, grid: tuple[int, int], steps_run: int) -> int:
    """MaskGIT sampling without inpainting: every step runs the full network over all h*w
    tokens; the logits head runs only on the positions still masked before that step
    (``nar.sampling.schedules.mask_counts``)."""
    n = grid[0] * grid[1]
    try:
        from nar.sampling.schedules import mask_counts
        counts = mask_counts(n, steps_run, prior.cfg.schedule)
        masked_before = [n] + counts[:-1]
    except Exception:  # noqa: BLE001 - schedule helper missing or changed: head on every token
        masked_before = [n] * steps_run
    return sum(maskgit_forward_flops(prior, grid, m) for m in masked_before)


def sundae_forward_flops(prior, grid: tuple[int, int]) -> int:
    if hasattr(prior, "flops"):
        return int(prior.flops(*grid))
    from nar.nn.hourglass import count_flops
    net = prior.cfg.net
    return count_flops(net, *grid) + 2 * grid[0] * grid[1] * net.dim * prior.codebook_size


def forward_flops(prior, grid: tuple[int, int]) -> int | None:
    """FLOPs of one full network forward over the grid (batch 1), or None when unknown.
    For ``ar`` this is a full causal-masked forward (teacher forcing), not a sampling step."""
    name = getattr(prior, "name", "")
    if name == "maskgit":
        return maskgit_forward_flops(prior, grid)
    if name == "sundae":
        return sundae_forward_flops(prior, grid)
    if name == "ar":
        cfg = prior.cfg
        n = grid[0] * grid[1]
        return transformer_forward_flops(n, cfg.dim, cfg.depth, cfg.heads * cfg.dim_head,
                                         cfg.ff_mult * cfg.dim, prior.codebook_size)
    return None


def flops_per_image(prior, grid: tuple[int, int], steps_run: int | None = None,
                    forward_passes: int | None = None) -> tuple[int | None, str]:
    """(analytic sampling FLOPs for one image, how they were obtained).

    ``forward_passes``: network evaluations per image that the sampler reported (parallel
    priors: one full forward each). Returns (None, reason) when nothing is known."""
    grid = (int(grid[0]), int(grid[1]))
    own = getattr(prior, "flops_per_image", None)
    if callable(own):
        return int(own(grid, steps_run=steps_run, forward_passes=forward_passes)), "the prior's own count"
    name = getattr(prior, "name", "")
    if name == "ar":
        return ar_flops(prior, grid), "KV-cached raster scan (one causal forward in total)"
    if name == "maskgit" and steps_run is not None and forward_passes in (None, steps_run):
        return maskgit_sampling_flops(prior, grid, int(steps_run)), \
            f"one full forward x {steps_run} step(s), logits head on the still-masked tokens"
    passes = forward_passes if forward_passes is not None else steps_run
    fwd = forward_flops(prior, grid)
    if fwd is None or passes is None:
        return None, f"no FLOP formula for prior {name!r}"
    return int(fwd) * int(passes), f"one full forward x {passes} pass(es)"


class _DecodePath(nn.Module):
    def __init__(self, tokenizer):
        super().__init__()
        self.post_quant_conv = tokenizer.post_quant_conv
        self.decoder = tokenizer.decoder

    def forward(self, codes):
        return self.decoder(self.post_quant_conv(codes))


def decoder_flops(tokenizer, grid: tuple[int, int]) -> int | None:
    """Matmul/conv FLOPs of decoding one h×w token grid, counted by ``torch.utils.flop_counter``
    on a meta-device copy of the decoder (shapes only: instant, no memory). None when the
    tokenizer does not have the VQGAN layout."""
    from torch.utils.flop_counter import FlopCounterMode

    if not (hasattr(tokenizer, "decoder") and hasattr(tokenizer, "post_quant_conv")):
        return None
    try:
        path = copy.deepcopy(_DecodePath(tokenizer)).to("meta")
        dim = int(tokenizer.post_quant_conv.in_channels)
        codes = torch.empty(1, dim, int(grid[0]), int(grid[1]), device="meta")
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            path(codes)
        return int(counter.get_total_flops())
    except Exception:  # an exotic layer without a meta kernel: report it as unknown
        return None
