"""Super-resolution losses: L1 + the tokenizer's weight-free perceptual and adversarial terms.

generator:      L = w_l1 * L1 + w_g * L1(finite differences) + w_p * LPIPS
                    + [step >= disc_start] * lambda * w_d * hinge_gen(PatchGAN(sr))
discriminator:  hinge loss on a PatchGAN over high-resolution crops (true renders vs SR)
lambda is Taming's adaptive weight on the SR net's last layer.

The gradient term, LPIPS, discriminator, hinge loss and adaptive weight are the tokenizer's own
(`nar.tokenizer.losses.ImageLoss`), shared, not copied.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nar.core.errors import NarError
from nar.tokenizer.losses import ImageLoss


@dataclass
class SRLossConfig:
    l1_weight: float = 1.0
    gradient_weight: float = 0.0       # L1 between horizontal / vertical finite differences (edges)
    spectral_weight: float = 0.0       # L1 between local amplitude spectra (nar.tokenizer.losses)
    spectral_patch: int = 16
    perceptual_weight: float = 1.0     # LPIPS (VGG); 0 with one warning line when the weights are absent
    lpips_weights: str | None = None
    disc_weight: float = 0.1
    disc_start: int = 500
    disc_layers: int = 3
    disc_ch: int = 32
    adaptive_weight: bool = True
    adaptive_weight_max: float = 1.0   # clamp on lambda (Taming's is 1e4; an SR net needs far less)
    lecam_weight: float = 0.0          # LeCam regulariser on the discriminator (0: off)

    def validate(self) -> "SRLossConfig":
        for name in ("l1_weight", "gradient_weight", "spectral_weight", "perceptual_weight", "disc_weight",
                     "lecam_weight"):
            if getattr(self, name) < 0:
                raise NarError(f"sr loss: {name} must be >= 0")
        if self.disc_layers < 1 or self.disc_ch < 1:
            raise NarError("sr loss: disc_layers and disc_ch must be >= 1")
        return self


class SRLoss(ImageLoss):
    """L1 plus the tokenizer's image terms (`ImageLoss`: gradient L1, LPIPS, PatchGAN)."""

    def __init__(self, cfg: SRLossConfig, lpips_model: nn.Module | None = None, build_perceptual: bool = True):
        super().__init__(cfg.validate(), lpips_model, build_perceptual)

    def generator_loss(self, hr: torch.Tensor, sr: torch.Tensor, step: int,
                       last_layer: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        l1 = (hr.float() - sr.float()).abs().mean()
        metrics = {"l1": float(l1.detach())}
        nll = self.edge_and_perceptual(hr, sr, self.cfg.l1_weight * l1, metrics)
        loss = self.add_gan(nll, sr, nll, step, last_layer, metrics)
        metrics["loss"] = float(loss.detach())
        return loss, metrics
