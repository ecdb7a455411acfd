"""Guidance against the model's own class mixture, for class-conditional autoregressive priors.

Classifier-free guidance draws from ``log p_u + s (log p_c − log p_u)``, where the unconditional
``p_u(x_t | x_<t)`` comes from a null-class branch trained on the 10 % of samples whose class was
dropped. What it stands in for is the model's own marginal, the class-conditionals mixed by the
posterior over classes given the prefix drawn so far:

    p_mix(x_t | x_<t) = Σ_c' p(c' | x_<t) p(x_t | c', x_<t),   p(c' | x_<t) ∝ Π_{τ<t} p(x_τ | c', x_<τ)

so ``s (log p_c − log p_mix)`` is the log-odds of the asked class under the model's implicit (Bayes)
classifier, and it fades as the prefix settles the class: guidance works where the scene is still
open (which of lake, coast, mountains a sky becomes) and stops once the prefix is unmistakably the
asked class. The null branch has no such bookkeeping, and keeps pushing a draw that is already its
class further from the average image (ar's cfg-2.5 draws carry 3.9× the class evidence of a real
render, session 47). ``sharpness`` (β) tempers the posterior, p(c' | x_<t) ∝ exp(β Σ log p): β < 1
keeps guidance on for longer. Costs one branch per class (C forward passes per cell, not 2).

``contrast`` mixes only the other classes, weighted by their posterior: the guidance is then the log-odds
of the asked class against its likeliest rivals given the prefix (a lake whose sky could still become a
coast is pushed away from the coast), and it does not fade.

Measured on the shipped ar (session 48, 144 class-balanced 1024² draws per row, bench seed 0; null-branch
CFG at 2: FD 2.60, class fidelity 0.819): "posterior" is worse (cfg 2 / 3: FD 3.94 / 3.33, class fidelity
0.69 / 0.68: once the class settles the rest of the grid is drawn unguided, and lakes and cities lose
their class), "contrast" is better (cfg 2 / 2.5: FD 2.32 / 2.23, class fidelity 0.83 / 0.89) and is what
the shipped ar uses (`benchmarks/results/issue13/README.md`, session 48).
"""
from __future__ import annotations

import torch
from einops import rearrange, repeat

from nar.core.errors import NarError

GUIDANCE_MODES = ("null", "posterior", "contrast")


def check_guidance_mode(name: str) -> str:
    """``name`` if it is a guidance mode, else a `NarError` listing the known ones."""
    if name not in GUIDANCE_MODES:
        raise NarError(f"unknown guidance mode {name!r}; known: {', '.join(GUIDANCE_MODES)}")
    return name


class PosteriorGuidance:
    """Per-draw state of posterior guidance over ``num_classes`` branches for (n,) asked ``class_ids``.
    Feed the model the batch ``branch_ids`` (class-major: all n draws under class 0, then class 1, …),
    turn its logits into guided ones with `combine`, and report each drawn token with `observe`."""

    def __init__(self, class_ids: torch.Tensor, num_classes: int, sharpness: float = 1.0, contrast: bool = False):
        if bool((class_ids < 0).any()) or bool((class_ids >= num_classes).any()):
            raise NarError("posterior guidance needs a real class for every draw (no unconditional ones)")
        if not sharpness >= 0:
            raise NarError(f"posterior guidance: sharpness must be >= 0, got {sharpness}")
        if contrast and num_classes < 2:
            raise NarError("contrast guidance needs at least two classes")
        self.asked, self.num_classes, self.sharpness = class_ids, num_classes, float(sharpness)
        self.prefix_ll = torch.zeros(num_classes, class_ids.shape[0], device=class_ids.device)  # (C, n)
        self._draws = torch.arange(class_ids.shape[0], device=class_ids.device)
        # (C, n): True where branch c' is draw i's own class, left out of the mixture under contrast
        self._own_class = ((torch.arange(num_classes, device=class_ids.device)[:, None] == class_ids[None])
                           if contrast else None)
        self._logp: torch.Tensor | None = None

    @property
    def branch_ids(self) -> torch.Tensor:
        classes = torch.arange(self.num_classes, device=self.asked.device)
        return repeat(classes, "c -> (c n)", n=self.asked.shape[0])

    def posterior(self) -> torch.Tensor:
        """(C, n) log p(c' | prefix) under a uniform class prior (over the other classes: ``contrast``)."""
        scores = self.sharpness * self.prefix_ll
        if self._own_class is not None:
            scores = scores.masked_fill(self._own_class, float("-inf"))
        return scores.log_softmax(0)

    def combine(self, logits: torch.Tensor, cfg_scale: float) -> torch.Tensor:
        """(C·n, V) branch logits -> (n, V) guided log-probabilities."""
        logp = rearrange(logits.float(), "(c n) v -> c n v", c=self.num_classes).log_softmax(-1)
        self._logp = logp
        mixture = torch.logsumexp(self.posterior()[..., None] + logp, dim=0)  # (n, V)
        asked = logp[self.asked, self._draws]  # (n, V): each draw under its own class
        return mixture + cfg_scale * (asked - mixture)

    def observe(self, tokens: torch.Tensor) -> None:
        """Add the drawn (n,) tokens' log-likelihood under every class to the prefix's."""
        if self._logp is None:
            raise NarError("PosteriorGuidance.observe before combine")
        self.prefix_ll += self._logp.gather(2, repeat(tokens, "n -> c n 1", c=self.num_classes)).squeeze(-1)
        self._logp = None
