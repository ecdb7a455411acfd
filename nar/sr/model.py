"""A compact 2x super-resolution network (WDSR / EDSR family), built for CPU speed.

All convolutions run at the LOW resolution; a final 3x3 convolution makes ``scale²·3``
channels that a pixel shuffle turns into the high-resolution residual, added to a bicubic
upsampling of the input. The net therefore learns only what bicubic misses, and with its
last layer initialised to zero it starts as exactly bicubic.

Cost per input pixel (multiply-adds) ~ 9·(3·C + 2·n·C·E + C·3·s²) for C channels, n blocks
of expansion E = C·expansion: at C=32, n=4, expansion 1 about 78 k MAC per input pixel,
~82 GMAC for a 1024² input. Receptive field: ``receptive_radius`` input pixels each side.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from nar.core.errors import NarError

SKIPS = ("bicubic", "bilinear")


@dataclass
class SRModelConfig:
    scale: int = 2
    channels: int = 32          # width of the residual trunk
    blocks: int = 4             # residual blocks (two 3x3 convs each)
    expansion: float = 1.0      # WDSR wide activation: the first conv of a block widens to channels*expansion
    res_scale: float = 1.0      # residual branch scaling (EDSR)
    skip: str = "bicubic"       # upsampling the residual is added to

    def validate(self) -> "SRModelConfig":
        if self.scale < 2:
            raise NarError(f"sr model: scale must be >= 2, got {self.scale}")
        if self.channels < 1 or self.blocks < 0 or self.expansion <= 0:
            raise NarError("sr model: channels >= 1, blocks >= 0 and expansion > 0 are required")
        if self.skip not in SKIPS:
            raise NarError(f"sr model: skip must be one of {SKIPS}, not {self.skip!r}")
        return self


class ResBlock(nn.Module):
    def __init__(self, channels: int, wide: int, res_scale: float):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, wide, 3, padding=1)
        self.conv2 = nn.Conv2d(wide, channels, 3, padding=1)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.conv2(F.relu(self.conv1(x)))


class SRNet(nn.Module):
    """(B, 3, H, W) in [-1, 1] -> (B, 3, s·H, s·W): bicubic(x) + pixel_shuffle(trunk(x))."""

    def __init__(self, cfg: SRModelConfig | None = None):
        super().__init__()
        self.cfg = cfg = (cfg or SRModelConfig()).validate()
        wide = max(1, round(cfg.channels * cfg.expansion))
        self.head = nn.Conv2d(3, cfg.channels, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(cfg.channels, wide, cfg.res_scale) for _ in range(cfg.blocks)])
        self.tail = nn.Conv2d(cfg.channels, 3 * cfg.scale ** 2, 3, padding=1)
        nn.init.zeros_(self.tail.weight)   # starts as the plain skip (bicubic)
        nn.init.zeros_(self.tail.bias)

    @property
    def scale(self) -> int:
        return self.cfg.scale

    @property
    def last_layer(self) -> torch.Tensor:
        """The weight the adaptive GAN weight is measured on."""
        return self.tail.weight

    @property
    def receptive_radius(self) -> int:
        """Input pixels each side an output pixel depends on (3x3 convs + the bicubic skip)."""
        return 2 + 2 * self.cfg.blocks + 2

    def upsample(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.cfg.scale, mode=self.cfg.skip, align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        r = self.tail(self.body(h) + h)
        r = rearrange(r, "b (c sh sw) h w -> b c (h sh) (w sw)", sh=self.cfg.scale, sw=self.cfg.scale)
        return self.upsample(x) + r

    def macs_per_pixel(self) -> int:
        """Multiply-adds per INPUT pixel (convolutions only)."""
        return sum(m.weight.numel() for m in self.modules() if isinstance(m, nn.Conv2d))
