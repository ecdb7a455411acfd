"""VQGAN: Taming-style convolutional encoder / decoder around a nearest-code quantizer.

Layout (same names as Taming / LlamaGen, so the checkpoint reads like theirs)::

    x (B,3,H,W) -> encoder -> (B,z,h,w) -> quant_conv -> (B,d,h,w) -> quantizer -> tokens (B,h,w)
    tokens -> quantizer.lookup -> (B,d,h,w) -> post_quant_conv -> (B,z,h,w) -> decoder -> (B,3,H,W)

with h = H / f, w = W / f and f = 2 ** (len(ch_mult) - 1). Everything is convolutional except
self-attention at the lowest resolution, so a model trained on 256² crops encodes and decodes
1024² and 2048² images. The decoder side (``quantizer.``, ``post_quant_conv.``, ``decoder.``)
can be built and loaded on its own (``VQGAN(cfg, decode_only=True)``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from nar.core.errors import NarError
from nar.tokenizer.config import TokenizerConfig
from nar.tokenizer.quantizer import Quantizer, code_counts, usage_stats

# checkpoint prefixes the decoder needs; everything else (encoder., quant_conv.) is encode-only
DECODE_PREFIXES = ("quantizer.", "post_quant_conv.", "decoder.")


MIN_CHANNELS_PER_GROUP = 4


def group_norm(channels: int) -> nn.GroupNorm:
    # Taming's 32 groups from 128 channels up; narrower layers keep >= 4 channels per group,
    # since one channel per group (instance norm) erases each channel's level and trains far slower
    groups = math.gcd(32, max(1, channels // MIN_CHANNELS_PER_GROUP))
    return nn.GroupNorm(groups, channels, eps=1e-6)


class ResnetBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm2 = group_norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():  # inference: the same math, no fresh full-size buffers
            h = self.conv1(F.silu(self.norm1(x), inplace=True))
            h = self.conv2(self.dropout(F.silu(self.norm2(h), inplace=True)))
            return h.add_(self.skip(x))
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention (Taming's AttnBlock) through SDPA."""

    def __init__(self, ch: int):
        super().__init__()
        self.norm = group_norm(ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj_out = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        qkv = rearrange(self.qkv(self.norm(x)), "b (three c) h w -> three b 1 (h w) c", three=3)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])     # (B, 1, h*w, C)
        out = rearrange(out, "b 1 (h w) c -> b c h w", h=h, w=w)
        if not torch.is_grad_enabled():
            return self.proj_out(out).add_(x)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Taming's asymmetric pad: exact halving for even sizes
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """2x nearest upsampling then a 3x3 convolution.

    Inference runs it as a sub-pixel convolution with the same weights: output pixel
    (2i+a, 2j+b) of conv3x3(nearest2x(x)) only ever sees x at rows {i-1, i} (a = 0) or {i, i+1}
    (a = 1), and likewise for columns, so each of the four output phases is a 2x2 convolution
    of x whose taps are sums of the 3x3 taps. One convolution with the four phase kernels
    stacked (4·C outputs, padding 1) and an interleave give the same image with 16/36 of the
    multiply-adds and without the upsampled input ever being built."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)
        self._phases: tuple | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        weight, bias = self._phase_weights()
        b, c, h, w = x.shape
        y = F.conv2d(x, weight, bias.to(x.dtype) if bias is not None else None, padding=1)  # (B, 4C, h+1, w+1)
        out = torch.empty(b, c, 2 * h, 2 * w, dtype=y.dtype, device=y.device, memory_format=torch.channels_last
                          if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format)
        for k, (a, b_) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            out[:, :, a::2, b_::2] = y[:, k * c:(k + 1) * c, a:a + h, b_:b_ + w]
        return out

    def _phase_weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(4C, C, 2, 2) phase kernels (and the bias 4 times), rebuilt when the weights change."""
        w = self.conv.weight
        key = (id(w), w._version, w.device, w.dtype)
        if self._phases is None or self._phases[0] != key:
            with torch.no_grad():
                # rows: phase 0 sees (i-1: tap 0) and (i: taps 1+2); phase 1 sees (i: taps 0+1) and (i+1: tap 2)
                fold = w.new_tensor([[[1, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]])  # (phase, tap2, tap3)
                kernels = torch.einsum("apy,bqx,oiyx->aboipq", fold, fold, w.float().to(fold))
                weight = kernels.reshape(4 * w.shape[0], w.shape[1], 2, 2).to(w.dtype).contiguous()
                bias = self.conv.bias.repeat(4) if self.conv.bias is not None else None
            self._phases = (key, weight, bias)
        return self._phases[1], self._phases[2]


class Level(nn.Module):
    """One resolution of the encoder or decoder: res blocks (+ attention) then a resample."""

    def __init__(self, in_ch: int, out_ch: int, n_blocks: int, attn: bool, dropout: float,
                 resample: nn.Module | None, extra_blocks: int = 0):
        super().__init__()
        self.blocks = nn.ModuleList(ResnetBlock(in_ch if i == 0 else out_ch, out_ch, dropout)
                                    for i in range(n_blocks))
        self.attns = nn.ModuleList(AttnBlock(out_ch) for _ in range(n_blocks)) if attn else None
        # blocks a grown decoder adds (decoder_extra_blocks); they start as the identity, so a
        # decoder grown from a trained one first draws exactly what its parent drew
        self.extra = nn.ModuleList(ResnetBlock(out_ch, out_ch, dropout) for _ in range(extra_blocks))
        for block in self.extra:
            nn.init.zeros_(block.conv2.weight)
            nn.init.zeros_(block.conv2.bias)
        self.resample = resample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            x = block(x)
            if self.attns is not None:
                x = self.attns[i](x)
        for block in self.extra:
            x = block(x)
        return self.resample(x) if self.resample is not None else x


class MidBlock(nn.Module):
    def __init__(self, ch: int, attn: bool, dropout: float):
        super().__init__()
        self.block_1 = ResnetBlock(ch, ch, dropout)
        self.attn_1 = AttnBlock(ch) if attn else nn.Identity()
        self.block_2 = ResnetBlock(ch, ch, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    """(B, 3, H, W) -> (B, z_channels, H/f, W/f)."""

    def __init__(self, ch: int, ch_mult: tuple[int, ...], num_res_blocks: int, z_channels: int,
                 attn_at_lowest: bool = True, dropout: float = 0.0):
        super().__init__()
        self.conv_in = nn.Conv2d(3, ch, 3, padding=1)
        widths = [ch * m for m in ch_mult]
        levels, in_ch = [], ch
        for i, out_ch in enumerate(widths):
            lowest = i == len(widths) - 1
            levels.append(Level(in_ch, out_ch, num_res_blocks, attn_at_lowest and lowest, dropout,
                                None if lowest else Downsample(out_ch)))
            in_ch = out_ch
        self.down = nn.ModuleList(levels)
        self.mid = MidBlock(in_ch, attn_at_lowest, dropout)
        self.norm_out = group_norm(in_ch)
        self.conv_out = nn.Conv2d(in_ch, z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class UpscaleLevel(nn.Module):
    """The level a decoder grows to draw at twice its resolution (``decoder_upscale = 2``): 2x
    upsampling then res blocks, all starting as the identity (the upsampling conv passes each
    channel through its centre tap), so the grown decoder first draws close to its parent's image
    pixel-doubled (not exactly: the output conv now sees a 3x3 neighbourhood of doubled pixels)."""

    def __init__(self, ch: int, n_blocks: int, dropout: float):
        super().__init__()
        self.resample = Upsample(ch)
        with torch.no_grad():
            self.resample.conv.weight.zero_()
            self.resample.conv.weight[:, :, 1, 1] = torch.eye(ch)
            self.resample.conv.bias.zero_()
        self.blocks = nn.ModuleList(ResnetBlock(ch, ch, dropout) for _ in range(n_blocks))
        for block in self.blocks:
            nn.init.zeros_(block.conv2.weight)
            nn.init.zeros_(block.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resample(x)
        for block in self.blocks:
            x = block(x)
        return x


class Decoder(nn.Module):
    """(B, z_channels, h, w) -> (B, 3, h*f*upscale, w*f*upscale)."""

    def __init__(self, ch: int, ch_mult: tuple[int, ...], num_res_blocks: int, z_channels: int,
                 attn_at_lowest: bool = True, dropout: float = 0.0, extra_blocks: tuple[int, ...] = (),
                 upscale: int = 1, upscale_blocks: int = 2):
        super().__init__()
        widths = [ch * m for m in ch_mult]
        extra = list(extra_blocks) + [0] * (len(widths) - len(extra_blocks))   # lowest resolution first
        in_ch = widths[-1]
        self.conv_in = nn.Conv2d(z_channels, in_ch, 3, padding=1)
        self.mid = MidBlock(in_ch, attn_at_lowest, dropout)
        levels = []
        for n, i in enumerate(reversed(range(len(widths)))):   # lowest resolution first
            lowest = i == len(widths) - 1
            levels.append(Level(in_ch, widths[i], num_res_blocks + 1, attn_at_lowest and lowest, dropout,
                                Upsample(widths[i]) if i > 0 else None, extra_blocks=extra[n]))
            in_ch = widths[i]
        self.up = nn.ModuleList(levels)
        self.upscale = UpscaleLevel(in_ch, upscale_blocks, dropout) if upscale == 2 else None
        self.norm_out = group_norm(in_ch)
        self.conv_out = nn.Conv2d(in_ch, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in self.up:
            h = level(h)
        if self.upscale is not None:
            h = self.upscale(h)
        return self.conv_out(F.silu(self.norm_out(h), inplace=not torch.is_grad_enabled()))

    @property
    def last_layer(self) -> torch.Tensor:
        """The weight Taming's adaptive GAN weight is computed on."""
        return self.conv_out.weight


class VQGAN(nn.Module):
    def __init__(self, cfg: TokenizerConfig, decode_only: bool = False):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.decode_only = decode_only
        arch = dict(ch=cfg.ch, ch_mult=tuple(cfg.ch_mult), num_res_blocks=cfg.num_res_blocks,
                    z_channels=cfg.z_channels, attn_at_lowest=cfg.attn_at_lowest, dropout=cfg.dropout)
        if not decode_only:
            self.encoder = Encoder(**arch)
            self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.codebook_dim, 1)
        self.quantizer = Quantizer(cfg.codebook_dim, cfg.codebook_size, use_cosine_sim=cfg.use_cosine_sim,
                                   codebook_update=cfg.codebook_update, decay=cfg.decay,
                                   kmeans_init=cfg.kmeans_init, kmeans_iters=cfg.kmeans_iters,
                                   threshold_ema_dead_code=cfg.threshold_ema_dead_code,
                                   commitment_weight=cfg.commitment_weight)
        self.post_quant_conv = nn.Conv2d(cfg.codebook_dim, cfg.z_channels, 1)
        self.decoder = Decoder(**arch, extra_blocks=tuple(cfg.decoder_extra_blocks),
                               upscale=cfg.decoder_upscale, upscale_blocks=cfg.decoder_upscale_blocks)
        self.hash: str | None = None   # content hash of the checkpoint it was loaded from

    # ---- facts priors and pipelines ask for --------------------------------------------
    @property
    def factor(self) -> int:
        return self.cfg.factor

    @property
    def decode_factor(self) -> int:
        """Output pixels per token side: the factor, times 2 for a decoder grown to upscale."""
        return self.cfg.factor * self.cfg.decoder_upscale

    @property
    def codebook_size(self) -> int:
        return self.cfg.codebook_size

    @property
    def device(self) -> torch.device:
        return self.post_quant_conv.weight.device

    def codebook(self) -> torch.Tensor:
        """(V, d) code vectors, e.g. to initialise a prior's token embeddings."""
        return self.quantizer.codebook().detach()

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """Token grid (h, w) of an image of the given size; sizes must be multiples of f."""
        f = self.factor
        if height % f or width % f:
            raise NarError(f"image size {width}x{height} is not a multiple of the tokenizer's factor {f}; "
                           "pad or crop it (reconstruct_image pads automatically)")
        return height // f, width // f

    # ---- encode / decode ----------------------------------------------------------------
    def _check_images(self, x: torch.Tensor) -> None:
        if self.decode_only:
            raise NarError("this tokenizer was loaded decode-only; load it without decode_only to encode")
        if x.ndim != 4 or x.shape[1] != 3:
            raise NarError(f"expected images of shape (B, 3, H, W), got {tuple(x.shape)}")
        self.grid(x.shape[-2], x.shape[-1])

    def encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) in [-1, 1] -> pre-quantization latent (B, d, h, w)."""
        self._check_images(x)
        # channels-last convolutions are ~20% faster on CPU (oneDNN) and on GPU tensor cores
        return self.quant_conv(self.encoder(x.contiguous(memory_format=torch.channels_last)))

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) in [-1, 1] -> tokens (B, h, w) long."""
        return self.quantizer.nearest(self.encode_latent(x))

    def decode_codes(self, quantized: torch.Tensor) -> torch.Tensor:
        """(B, d, h, w) code vectors -> images (B, 3, h*F, w*F), F = ``decode_factor``."""
        quantized = quantized.to(self.post_quant_conv.weight.dtype).contiguous(memory_format=torch.channels_last)
        return self.decoder(self.post_quant_conv(quantized))

    def decode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, h, w) -> images (B, 3, h*F, w*F), F = ``decode_factor``, roughly in [-1, 1]
        (not clamped)."""
        if tokens.ndim != 3:
            raise NarError(f"expected tokens of shape (B, h, w), got {tuple(tokens.shape)}")
        return self.decode_codes(self.quantizer.lookup(tokens.to(self.device)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """x (B, 3, H, W) -> (reconstruction (B, 3, H, W), quantizer loss, info) where info
        holds ``tokens`` (B, h, w) and this batch's codebook ``usage`` and ``perplexity``."""
        quantized, tokens, quant_loss = self.quantizer(self.encode_latent(x))
        recon = self.decode_codes(quantized)
        info = {"tokens": tokens, **usage_stats(code_counts(tokens, self.codebook_size))}
        return recon, quant_loss, info
