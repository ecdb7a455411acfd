"""Super-resolution losses: L1 + the tokenizer's weight-free perceptual and adversarial terms.

generator:      L = w_l1 * L1 + w_g * L1(finite differences) + w_p * LPIPS
                    + [step >= disc_start] * lambda * w_d * hinge_gen(PatchGAN(sr))
discriminator:  hinge loss on a PatchGAN over high-resolution crops (true renders vs SR)
lambda is Taming's adaptive weight on the SR net's last layer.

The discriminator, hinge loss, adaptive weight, gradient term and LPIPS are the tokenizer's own
(`nar.tokenizer.losses`), reused, not copied.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nar.core.errors import NarError
from nar.tokenizer.losses import (NLayerDiscriminator, adaptive_weight, build_lpips, gradient_loss,
                                  hinge_d_loss, lpips_distance)


@dataclass
class SRLossConfig:
    l1_weight: float = 1.0
    gradient_weight: float = 0.0       # L1 between horizontal / vertical finite differences (edges)
    perceptual_weight: float = 1.0     # LPIPS (VGG); 0 with one warning line when the weights are absent
    lpips_weights: str | None = None
    disc_weight: float = 0.1
    disc_start: int = 500
    disc_layers: int = 3
    disc_ch: int = 32
    adaptive_weight: bool = True
    adaptive_weight_max: float = 1.0   # clamp on lambda (Taming's is 1e4; an SR net needs far less)

    def validate(self) -> "SRLossConfig":
        for name in ("l1_weight", "gradient_weight", "perceptual_weight", "disc_weight"):
            if getattr(self, name) < 0:
                raise NarError(f"sr loss: {name} must be >= 0")
        if self.disc_layers < 1 or self.disc_ch < 1:
            raise NarError("sr loss: disc_layers and disc_ch must be >= 1")
        return self


class SRLoss:
    """Holds the PatchGAN (trained alongside, checkpointed by the loop as an extra module) and a
    frozen LPIPS (not saved)."""

    def __init__(self, cfg: SRLossConfig, lpips_model: nn.Module | None = None, build_perceptual: bool = True):
        self.cfg = cfg.validate()
        self.discriminator = NLayerDiscriminator(cfg.disc_layers, cfg.disc_ch)
        self.lpips = lpips_model
        if self.lpips is None and build_perceptual and cfg.perceptual_weight > 0:
            self.lpips = build_lpips(cfg.lpips_weights)
        self.perceptual_weight = cfg.perceptual_weight if self.lpips is not None else 0.0

    def disc_active(self, step: int) -> bool:
        return self.cfg.disc_weight > 0 and step >= self.cfg.disc_start

    def generator_loss(self, hr: torch.Tensor, sr: torch.Tensor, step: int,
                       last_layer: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        l1 = (hr.float() - sr.float()).abs().mean()
        nll = self.cfg.l1_weight * l1
        metrics = {"l1": float(l1.detach())}
        if self.cfg.gradient_weight > 0:
            edges = gradient_loss(hr, sr)
            nll = nll + self.cfg.gradient_weight * edges
            metrics["grad"] = float(edges.detach())
        if self.perceptual_weight > 0:
            if next(self.lpips.parameters()).device != hr.device:
                self.lpips.to(hr.device)
            perceptual = lpips_distance(self.lpips, hr, sr).mean()
            nll = nll + self.perceptual_weight * perceptual
            metrics["lpips"] = float(perceptual.detach())
        loss = nll
        if self.disc_active(step):
            gan = -self.discriminator(sr).float().mean()
            weight = (adaptive_weight(nll, gan, last_layer, self.cfg.adaptive_weight_max)
                      if self.cfg.adaptive_weight else torch.ones((), device=sr.device))
            loss = loss + weight * self.cfg.disc_weight * gan
            metrics.update(gan=float(gan.detach()), adaptive_weight=float(weight))
        metrics["loss"] = float(loss.detach())
        return loss, metrics

    def discriminator_loss(self, hr: torch.Tensor, sr: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        logits_real = self.discriminator(hr.detach())
        logits_fake = self.discriminator(sr.detach())
        loss = hinge_d_loss(logits_real, logits_fake)
        return loss, {"d_loss": float(loss.detach()),
                      "logits_real": float(logits_real.detach().float().mean()),
                      "logits_fake": float(logits_fake.detach().float().mean())}
