"""maskgit as its own critic: the log-probability the model gives each token of a grid given all the
others, read off in four lattice passes, and the two samplers that use it.

Refinement (``refine_rounds`` R > 0, off by default)
    MaskGIT never revisits a committed token, so a token drawn early from a flat distribution
    (a lone bright dot in a sky) stays whatever its neighbours become. After the T steps, each
    of R rounds scores every generated token by its log-probability given all the others, read
    off the model itself: the grid is split into the four (row mod 2, col mod 2) lattices, and
    one forward per lattice masks that lattice only, so every scored token sees its eight
    neighbours. The ``refine_ratio`` share of generated tokens the model finds least likely is
    then re-masked and decoded again in ``refine_steps`` steps of maskgit's sampler (kept
    tokens of inpainting are never scored or changed). This is the model acting as its own
    critic (as Token-Critic's separate critic does), at 4 + ``refine_steps`` forwards per round.

Best of K (``candidates`` K > 1; off by default)
    Every image is drawn K times in one batch, and one candidate is kept. Inpainting: each fill
    is scored by how likely the model finds the *kept* tokens within ``rank_ring`` cells of the
    region given everything else (the four lattice passes above, scoring those cells only): the
    fill that best explains its surroundings. Scoring the fill's own tokens instead prefers flat,
    predictable fills. Class-conditional sampling: each sample is scored by the model's implicit
    classifier, the pseudo-log-likelihood ratio log p(x | class) - log p(x | null) over all
    cells (four lattice passes, conditional and null batched): the sample most typical of its
    class rather than of the data at large (benchmarks/results/issue13, session 18).
"""
from __future__ import annotations

from dataclasses import replace

import torch

from nar.core.errors import ArgumentError
from nar.priors.base import SampleOutput, SampleRequest
from nar.sampling.fill import kept_ring

__all__ = ["LATTICE", "SelfCritic", "check_best_of", "check_refinement"]

# refinement's scoring passes: the cells of each (row mod 2, col mod 2) lattice, masked together
LATTICE = ((0, 0), (0, 1), (1, 0), (1, 1))


def check_refinement(rounds, ratio, steps) -> tuple[int, float, int]:
    """The refinement settings as (int, float, int); an `ArgumentError` names a bad one."""
    if float(rounds) != int(float(rounds)) or float(rounds) < 0:
        raise ArgumentError("refine_rounds", f"maskgit: refine_rounds must be a whole number >= 0, got {rounds}")
    if not 0.0 < float(ratio) <= 1.0:
        raise ArgumentError("refine_ratio", f"maskgit: refine_ratio must be in (0, 1], got {ratio}")
    if float(steps) != int(float(steps)) or float(steps) < 1:
        raise ArgumentError("refine_steps", f"maskgit: refine_steps must be a whole number >= 1, got {steps}")
    return int(float(rounds)), float(ratio), int(float(steps))


def check_best_of(candidates, ring) -> tuple[int, int]:
    """The best-of-K settings as (int, int); an `ArgumentError` names a bad one."""
    for name, value in (("candidates", candidates), ("rank_ring", ring)):
        if float(value) != int(float(value)) or float(value) < 1:
            raise ArgumentError(name, f"maskgit: {name} must be a whole number >= 1, got {value}")
    return int(float(candidates)), int(float(ring))


class SelfCritic:
    """Mixed into `MaskGITPrior`: needs its ``_masked_logits``, ``_sample``, ``patch_shift``,
    ``mask_id`` and ``null_class``."""

    def _support(self, req: SampleRequest, ids: torch.Tensor, scored: torch.Tensor) -> tuple[torch.Tensor, int]:
        """(n, h*w) log-probability of each ``scored`` cell's token given every other token (the
        guided model, as sampled), and the forwards run: one per (row mod 2, col mod 2) lattice
        with scored cells, masking those cells only. Unscored cells hold 0."""
        h, w = req.grid
        rows = torch.arange(h, device=ids.device)[:, None].expand(h, w)
        cols = torch.arange(w, device=ids.device)[None, :].expand(h, w)
        support, passes = torch.zeros(ids.shape, device=ids.device), 0
        for i, (dr, dc) in enumerate(LATTICE):
            lattice = ((rows % 2 == dr) & (cols % 2 == dc)).reshape(1, -1)
            masked = scored & lattice
            if not bool(masked.any()):
                continue
            logits = self._masked_logits(ids.masked_fill(masked, self.mask_id), masked, req.class_ids,
                                         req.cfg_scale, (h, w), self.patch_shift(i))
            logp = logits.log_softmax(dim=-1).gather(-1, ids[masked][:, None]).squeeze(-1)
            support, passes = support.masked_scatter(masked, logp), passes + 1
        return support, passes

    def _best_of(self, req: SampleRequest, candidates: int, ring: int) -> SampleOutput:
        """Best of K: draw ``candidates`` samples of every image in one batch and keep one. A fill
        (inpainting) is ranked by the mean log p(token | every other token) of the kept tokens
        within ``ring`` cells of the region, read off the model as refinement's scores are: the
        fill that best explains what surrounds it. A class-conditional free sample is ranked by
        the model's implicit classifier, the mean over all cells of log p(token | rest, class) -
        log p(token | rest, null). The batch, and so the cost of every pass, is K times wider;
        the callback sees each image's first candidate."""
        n, k = req.n, candidates
        def repeat(x):   # (n, ...) -> (n*k, ...), an image's candidates adjacent
            return None if x is None else x.repeat_interleave(k, dim=0)
        callback = None if req.callback is None else (lambda t, total, ids: req.callback(t, total, ids[::k]))
        wide = replace(req, n=n * k, class_ids=repeat(req.class_ids), known=repeat(req.known), keep=repeat(req.keep),
                       options={**req.options, "candidates": 1}, callback=callback)
        out = self._sample(wide)
        ids = out.tokens.reshape(n * k, -1)
        if req.keep is not None:
            scored = kept_ring(wide.keep.to(ids.device), ring).reshape(n * k, -1)
            support, passes = self._support(wide, ids, scored)
            score = (support * scored).sum(dim=1) / scored.sum(dim=1).clamp(min=1)
        else:   # [cond; null] unguided, in one batch per lattice
            null = torch.full_like(wide.class_ids, self.null_class)
            both = replace(wide, n=2 * n * k, class_ids=torch.cat([wide.class_ids, null]), cfg_scale=1.0)
            support, passes = self._support(both, ids.repeat(2, 1), torch.ones_like(ids, dtype=torch.bool).repeat(2, 1))
            conditional, unconditional = support.chunk(2)
            score = (conditional - unconditional).mean(dim=1)
        best = score.reshape(n, k).argmax(dim=1) + torch.arange(n, device=ids.device) * k
        return SampleOutput(tokens=out.tokens[best], steps_run=out.steps_run, forward_passes=out.forward_passes + passes)
