"""FLOPs per image for the benchmark tables: the priors' own analytic counts, and the
decoder's counted on the meta device.

Convention (``nar.nn.flops``, as ``torch.utils.flop_counter``): matmuls only, 2·m·n·k each.
Why the counts differ so much between priors:

- ``ar`` with a KV cache feeds each of the N = h·w positions once; position p attends to
  its p+1 predecessors. In total that is one *causal* forward over N tokens, spread over N
  sequential steps of one token each, each followed by the logits head for that position.
- ``maskgit`` runs the full bidirectional network over all N tokens every step.
- ``sundae`` likewise (hourglass + head) × steps actually run; the hourglass runs most of
  its layers on the (h/s)×(w/s) grid, so one forward costs well under a flat transformer's.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def flops_per_image(prior, grid: tuple[int, int], steps_run: int | None = None,
                    forward_passes: int | None = None) -> tuple[int | None, str]:
    """(analytic sampling FLOPs for one image, how they were counted) from the prior's own
    ``flops_per_image``; (None, reason) for a prior without a formula."""
    own = getattr(prior, "flops_per_image", None)
    flops = own((int(grid[0]), int(grid[1])), steps_run=steps_run, forward_passes=forward_passes) \
        if callable(own) else None
    if flops is None:
        return None, f"no FLOP formula for prior {getattr(prior, 'name', type(prior).__name__)!r}"
    return int(flops), getattr(prior, "flops_note", "") or "the prior's own count"


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
