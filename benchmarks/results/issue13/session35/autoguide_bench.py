"""Probe: autoguidance (Karras et al. 2024, "Guiding a diffusion model with a bad version of itself")
for the parallel priors, measured with `nar bench`. The weak model is an earlier shipped version of the
same prior (read out of git history). Two ways to combine, per step, in logit space:

  add:    l = l_u + cfg (l_c - l_u) + (w - 1) (l_c - l_bad_c)    (CFG as shipped plus an autoguidance term; 3 passes)
  uncond: l = l_bad_u + cfg (l_c - l_bad_u)                     (CFG whose unconditional branch is the weak model's)

  AG_BAD=path AG_MODE=add|uncond AG_W=w python autoguide_bench.py <nar bench args>
"""
import os
import sys

import torch

from nar.priors import load_prior
from nar.priors.maskgit import MaskGITPrior
from nar.priors.sundae import SundaePrior

BAD = load_prior(os.environ["AG_BAD"])
MODE, W = os.environ.get("AG_MODE", "add"), float(os.environ.get("AG_W", "1.5"))


def combine(good, bad, class_ids, cfg_scale, null):
    """good / bad: callables class_ids -> logits (float)."""
    if MODE == "uncond":
        l_c, l_bu = good(class_ids).float(), bad(torch.full_like(class_ids, null)).float()
        return l_bu + cfg_scale * (l_c - l_bu)
    both = good(torch.cat([class_ids, torch.full_like(class_ids, null)])).float()
    l_c, l_u = both.chunk(2)
    l_bc = bad(class_ids).float()
    return l_u + cfg_scale * (l_c - l_u) + (W - 1.0) * (l_c - l_bc)


def twice(x, n):
    return torch.cat([x, x]) if n == 2 * x.shape[0] else x


def sundae_logits(self, tokens, class_ids, cfg_scale, shift=(0, 0)):
    BAD.to(tokens.device)
    return combine(lambda c: self(twice(tokens, len(c)), c, shift), lambda c: BAD(tokens, c, shift),
                   class_ids, cfg_scale, self.null_class)


def maskgit_logits(self, ids, is_masked, class_ids, cfg_scale, grid, shift=(0, 0)):
    def good(c):
        return self(twice(ids, len(c)), c, grid, select=twice(is_masked, len(c)), shift=shift)

    def bad(c):
        return BAD(ids, c, grid, select=is_masked, shift=shift)

    return combine(good, bad, class_ids, cfg_scale, self.null_class)[:, : self.codebook_size]


SundaePrior._guided_logits = sundae_logits
MaskGITPrior._masked_logits = maskgit_logits
BAD.eval().requires_grad_(False)

from nar.cli import main  # noqa: E402

sys.argv = ["nar", "bench", *sys.argv[1:]]
main()
