"""VQGAN losses (Taming's VQLPIPSWithDiscriminator, without the learned log-variance) and
the reconstruction metrics the tokenizer reports.

generator:      L = L_rec + w_p * LPIPS + L_quant + [step >= disc_start] * lambda * w_d * L_gan
discriminator:  hinge loss on a PatchGAN (Taming's NLayerDiscriminator)
adaptive weight lambda = |grad L_nll| / (|grad L_gan| + 1e-4) on the decoder's last layer, clamped.

LPIPS uses the ``lpips`` package: its linear heads ship with the pip package, the VGG16
backbone is torchvision's file, read from a local path (never downloaded). Without it the
perceptual weight is 0, said once in one line.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from nar.core.errors import NarError
from nar.core.images import LUMA, cell_boundary_steps

VGG16_FILE = "vgg16-397923af.pth"      # torchvision's ImageNet VGG16 weights
LPIPS_SLICES = ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))  # lpips' vgg16 slice1..slice5
ADAPTIVE_WEIGHT_MAX = 1e4

_warned: set[str] = set()


def warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        print(f"warning: {message}", file=sys.stderr)


# ---- LPIPS ---------------------------------------------------------------------------------
def default_vgg_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE


def find_vgg_weights(path: str | Path | None = None) -> Path | None:
    """The VGG16 weights file to use: ``path`` when given (it must exist), else the torch hub cache."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise NarError(f"lpips_weights: VGG16 weights file not found: {path}")
        return path
    default = default_vgg_path()
    return default if default.is_file() else None


def _vgg_features_to_lpips(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision ``features.{i}.*`` keys -> lpips' ``slice{k}.{i}.*`` keys."""
    out = {}
    for key, value in state.items():
        if not key.startswith("features."):
            continue
        index = int(key.split(".")[1])
        for k, (lo, hi) in enumerate(LPIPS_SLICES, start=1):
            if lo <= index < hi:
                out[f"slice{k}.{key[len('features.'):]}"] = value
    return out


def build_lpips(path: str | Path | None = None) -> nn.Module | None:
    """A frozen LPIPS(vgg) module, or None (with one warning line) when no VGG weights exist."""
    weights = find_vgg_weights(path)
    if weights is None:
        warn_once(f"no VGG16 weights at {default_vgg_path()} (or lpips_weights); "
                  "LPIPS is off: perceptual weight 0, LPIPS not reported")
        return None
    import lpips
    with warnings.catch_warnings():   # torchvision's 'pretrained' deprecation chatter
        warnings.simplefilter("ignore")
        # pretrained=True loads lpips' bundled linear heads; pnet_rand=True builds VGG without a download
        model = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False)
    try:
        # torchvision's file is a plain state dict: weights_only refuses anything else
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as e:
        raise NarError(f"{weights} is not a torchvision VGG16 state dict: {e}") from None
    backbone = _vgg_features_to_lpips(state)
    missing, unexpected = model.net.load_state_dict(backbone, strict=False)
    if missing or unexpected:
        raise NarError(f"{weights} does not match VGG16 (missing {len(missing)} tensors)")
    return model.eval().requires_grad_(False)


def lpips_distance(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image LPIPS (B,) of images in [-1, 1], computed in fp32 (outside any autocast)."""
    with torch.autocast(x.device.type, enabled=False):
        return model(x.float(), y.float()).flatten()


# ---- discriminator -------------------------------------------------------------------------
class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator as in pix2pix / Taming: (B, 3, H, W) -> patch logits (B, 1, h', w')."""

    def __init__(self, n_layers: int = 3, ch: int = 64, in_ch: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ch * prev, ch * mult, 4, stride=stride, padding=1, bias=False),
                       nn.BatchNorm2d(ch * mult), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ch * mult, 1, 4, stride=1, padding=1))
        self.main = nn.Sequential(*layers)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class LeCamEMA(nn.Module):
    """Running means of the discriminator's logits on real and on fake images, the anchors of
    the LeCam regulariser (Tseng et al. 2021, "Regularizing GANs under limited data"). Buffers,
    so the loop saves and restores them with the discriminator and a resumed run is exact."""

    def __init__(self, decay: float = 0.99):
        super().__init__()
        self.decay = decay
        self.register_buffer("real", torch.zeros(()))
        self.register_buffer("fake", torch.zeros(()))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> None:
        self.real.lerp_(logits_real.float().mean(), 1 - self.decay)
        self.fake.lerp_(logits_fake.float().mean(), 1 - self.decay)
        self.updates += 1

    def anchors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(real, fake), bias-corrected for the zero start (as TF's zero_debias)."""
        correction = 1 - self.decay ** max(int(self.updates), 1)
        return self.real / correction, self.fake / correction


def lecam_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor, ema: LeCamEMA) -> torch.Tensor:
    """LeCam regulariser: real logits may not rise above the running mean of fake logits, nor
    fake logits fall below the running mean of real ones, without paying a square. It keeps a
    discriminator that easily wins (a decoder cannot draw what its tokens do not carry) from
    driving its logits apart, so the generator's gradient stays informative."""
    anchor_real, anchor_fake = ema.anchors()
    return (F.relu(logits_real.float() - anchor_fake).pow(2).mean()
            + F.relu(anchor_real - logits_fake.float()).pow(2).mean())


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1.0 - logits_real.float()).mean() + F.relu(1.0 + logits_fake.float()).mean())


def adaptive_weight(nll_loss: torch.Tensor, gan_loss: torch.Tensor, last_layer: torch.Tensor,
                    max_weight: float = ADAPTIVE_WEIGHT_MAX) -> torch.Tensor:
    """Taming's lambda = |grad nll| / (|grad gan| + 1e-4) w.r.t. the decoder's last layer,
    clamped to [0, max_weight] and detached. Norms in fp32 so bf16 grads cannot overflow."""
    nll_grad = torch.autograd.grad(nll_loss, last_layer, retain_graph=True)[0]
    gan_grad = torch.autograd.grad(gan_loss, last_layer, retain_graph=True)[0]
    weight = nll_grad.float().norm() / (gan_grad.float().norm() + 1e-4)
    weight = torch.nan_to_num(weight, nan=0.0, posinf=max_weight)
    return weight.clamp(0.0, max_weight).detach()


class ImageLoss:
    """The image-side terms shared by the tokenizer and the super-resolution model: an
    image-gradient L1, LPIPS (when VGG weights exist) and a PatchGAN hinge with Taming's adaptive
    weight. Holds the discriminator (trained, saved by the loop as an extra module) and a frozen
    LPIPS (not saved). ``cfg`` needs gradient_weight, spectral_weight, perceptual_weight, lpips_weights,
    disc_weight, disc_start, disc_layers, disc_ch, adaptive_weight, lecam_weight (adaptive_weight_max
    optional)."""

    def __init__(self, cfg, lpips_model: nn.Module | None = None, build_perceptual: bool = True):
        self.cfg = cfg
        self.discriminator = NLayerDiscriminator(cfg.disc_layers, cfg.disc_ch)
        self.lecam_weight = float(cfg.lecam_weight)
        self.lecam = LeCamEMA() if self.lecam_weight > 0 else None
        self.lpips = lpips_model
        if self.lpips is None and build_perceptual and cfg.perceptual_weight > 0:
            self.lpips = build_lpips(cfg.lpips_weights)
        # the weight actually used: 0 when the VGG weights are absent
        self.perceptual_weight = cfg.perceptual_weight if self.lpips is not None else 0.0

    def trained_modules(self) -> dict[str, nn.Module]:
        """What the training loop saves beside the generator: the discriminator, and the LeCam
        anchors when that regulariser is on (a run without it keeps its old checkpoint layout)."""
        return {"discriminator": self.discriminator, **({"lecam": self.lecam} if self.lecam is not None else {})}

    def disc_active(self, step: int) -> bool:
        return self.cfg.disc_weight > 0 and step >= self.cfg.disc_start

    def edge_and_perceptual(self, target: torch.Tensor, output: torch.Tensor, nll: torch.Tensor,
                            metrics: dict[str, float]) -> torch.Tensor:
        """``nll`` plus the gradient and LPIPS terms (each only when its weight is on)."""
        if self.cfg.gradient_weight > 0:
            edges = gradient_loss(target, output)
            nll = nll + self.cfg.gradient_weight * edges
            metrics["grad"] = float(edges.detach())
        if self.cfg.spectral_weight > 0:
            texture = local_spectrum_loss(target, output, self.cfg.spectral_patch)
            nll = nll + self.cfg.spectral_weight * texture
            metrics["spectral"] = float(texture.detach())
        if self.perceptual_weight > 0:
            if next(self.lpips.parameters()).device != target.device:
                self.lpips.to(target.device)
            perceptual = lpips_distance(self.lpips, target, output).mean()
            nll = nll + self.perceptual_weight * perceptual
            metrics["lpips"] = float(perceptual.detach())
        return nll

    def add_gan(self, loss: torch.Tensor, output: torch.Tensor, nll: torch.Tensor, step: int,
                last_layer: torch.Tensor, metrics: dict[str, float]) -> torch.Tensor:
        """``loss`` plus lambda * disc_weight * hinge generator term, once the discriminator is on."""
        if not self.disc_active(step):
            return loss
        gan = -self.discriminator(output).float().mean()
        max_weight = getattr(self.cfg, "adaptive_weight_max", ADAPTIVE_WEIGHT_MAX)
        weight = (adaptive_weight(nll, gan, last_layer, max_weight) if self.cfg.adaptive_weight
                  else torch.ones((), device=output.device))
        metrics.update(gan=float(gan.detach()), adaptive_weight=float(weight))
        return loss + weight * self.cfg.disc_weight * gan

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        logits_real = self.discriminator(real.detach())
        logits_fake = self.discriminator(fake.detach())
        loss = hinge_d_loss(logits_real, logits_fake)
        metrics = {"d_loss": float(loss.detach()),
                   "logits_real": float(logits_real.detach().float().mean()),
                   "logits_fake": float(logits_fake.detach().float().mean())}
        if self.lecam is not None:
            self.lecam.update(logits_real.detach(), logits_fake.detach())
            regulariser = lecam_loss(logits_real, logits_fake, self.lecam)
            loss = loss + self.lecam_weight * regulariser
            metrics["lecam"] = float(regulariser.detach())
        return loss, metrics


class VQLoss(ImageLoss):
    """Generator and discriminator losses of a VQGAN."""

    def reconstruction(self, x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        diff = x.float() - recon.float()
        return diff.abs().mean() if self.cfg.rec_loss == "l1" else diff.pow(2).mean()

    def generator_loss(self, x: torch.Tensor, recon: torch.Tensor, quant_loss: torch.Tensor,
                       step: int, last_layer: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        rec = self.reconstruction(x, recon)
        metrics = {"rec": float(rec.detach())}
        nll = self.edge_and_perceptual(x, recon, rec, metrics)
        loss = nll + quant_loss.float()
        metrics["quant"] = float(quant_loss.detach())
        if self.cfg.seam_weight > 0:   # outside nll: it must not raise the GAN's adaptive weight
            seams = seam_loss(x, recon, self.cfg.factor * self.cfg.decoder_upscale)
            loss = loss + self.cfg.seam_weight * seams
            metrics["seam"] = float(seams.detach())
        loss = self.add_gan(loss, recon, nll, step, last_layer, metrics)
        metrics["loss"] = float(loss.detach())
        return loss, metrics


def gradient_loss(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """L1 between the images' horizontal and vertical finite differences: it asks for edges
    where the input has them (and none at the tokenizer's cell boundaries) without any
    pretrained network."""
    x, recon = x.float(), recon.float()
    dx = (x[..., :, 1:] - x[..., :, :-1]) - (recon[..., :, 1:] - recon[..., :, :-1])
    dy = (x[..., 1:, :] - x[..., :-1, :]) - (recon[..., 1:, :] - recon[..., :-1, :])
    return 0.5 * (dx.abs().mean() + dy.abs().mean())


def seam_loss(x: torch.Tensor, recon: torch.Tensor, cell: int) -> torch.Tensor:
    """How much more the output's luminance steps across the token-cell boundaries (every
    ``cell``-th pixel) than between other neighbours, beyond what the input does there: per image,
    relu(seam ratio of recon - seam ratio of x), averaged. The ratio is the block ratio that
    ``nar.eval.sharpness.block_ratio`` reports; 1 means no visible cell grid. A GAN-sharpened
    decoder learns to draw its texture in 16-px cells (session 11's pilot: block ratio 1.71); this
    term makes the cell grid cost, and nothing else: detail away from the boundaries is free.
    Measured (session 14, `benchmarks/results/issue13/README.md`): that pilot with seam_weight 0.2
    kept its HF share (0.46× real against v2's 0.32×) with a block ratio of 0.78 instead of 1.71."""
    if cell < 2 or x.shape[-1] <= cell or x.shape[-2] <= cell:
        raise NarError(f"seam loss: cell {cell} must be >= 2 and smaller than the {tuple(x.shape[-2:])} images")
    weights = torch.tensor(LUMA, device=x.device, dtype=torch.float32).view(1, 3, 1, 1)

    def ratio(img: torch.Tensor) -> torch.Tensor:                       # (B,)
        edge, rest = cell_boundary_steps((img.float() * weights).sum(1), cell)
        return edge / (rest + 1e-4)

    return F.relu(ratio(recon) - ratio(x).detach()).mean()


SPECTRUM_FLOOR = 1e-2   # amplitude floor of the log spectrum (images in [-1, 1], orthonormal FFT)


def local_spectrum_loss(x: torch.Tensor, recon: torch.Tensor, patch: int = 16) -> torch.Tensor:
    """L1 between local log-amplitude spectra: Hann-windowed ``patch``×``patch`` tiles at half
    overlap, mean removed, log(|rfft2| + floor) compared bin by bin. Phase is left out, so a
    decoder is asked for the right amount of detail in each band and orientation of each tile,
    not for its exact placement: an L1 / gradient-L1 optimum blurs detail the tokens cannot
    place, this term pays for drawing it anyway. The log makes a band 10× too weak cost the
    same whether it is a strong low band or a faint high one (on plain amplitudes the high bands
    hardly count). Weight-free (no pretrained network), unlike LPIPS, and stable, unlike a GAN.
    Measured on the shipped f16 decoder, neither form added detail (high-frequency share stayed
    at 0.07× real: benchmarks/results/issue13/README.md), so no shipped recipe turns it on."""
    if patch < 4 or x.shape[-1] < patch or x.shape[-2] < patch:
        raise NarError(f"spectral loss: patch {patch} must be >= 4 and fit the {tuple(x.shape[-2:])} images")
    hann = torch.hann_window(patch, periodic=False, device=x.device, dtype=torch.float32)
    window = torch.outer(hann, hann)

    def log_amplitude(img: torch.Tensor) -> torch.Tensor:
        tiles = F.unfold(img.float(), patch, stride=patch // 2)                     # (B, C·p·p, L)
        tiles = rearrange(tiles, "b (c p q) l -> b c l p q", p=patch, q=patch)
        tiles = tiles - tiles.mean(dim=(-2, -1), keepdim=True)
        spectrum = torch.fft.rfft2(tiles * window, norm="ortho")
        amplitude = (spectrum.real.square() + spectrum.imag.square() + 1e-12).sqrt()  # finite gradient at 0
        return torch.log(amplitude + SPECTRUM_FLOOR)

    return (log_amplitude(x) - log_amplitude(recon)).abs().mean()


# ---- metrics -------------------------------------------------------------------------------
def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB (B,) of images in [-1, 1], on the [0, 1] scale after clamping."""
    x01 = (x.float().clamp(-1, 1) + 1) / 2
    y01 = (y.float().clamp(-1, 1) + 1) / 2
    mse = (x01 - y01).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp(min=1e-10))


def _gaussian_window(size: int, sigma: float, channels: int, device, dtype) -> torch.Tensor:
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    window = torch.outer(g, g)                                  # (size, size)
    return window.expand(channels, 1, size, size).contiguous()  # depthwise kernel


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (B,) of images in [-1, 1] (Wang et al. 2004: 11x11 gaussian window,
    sigma 1.5, K1 = 0.01, K2 = 0.03 on the [0, 1] scale, channel mean, valid region)."""
    x01 = (x.float().clamp(-1, 1) + 1) / 2
    y01 = (y.float().clamp(-1, 1) + 1) / 2
    c = x01.shape[1]
    window = min(window, x01.shape[-1], x01.shape[-2])
    kernel = _gaussian_window(window, sigma, c, x01.device, x01.dtype)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, groups=c)

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mu_x, mu_y = blur(x01), blur(y01)
    var_x = blur(x01 * x01) - mu_x ** 2
    var_y = blur(y01 * y01) - mu_y ** 2
    cov = blur(x01 * y01) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(1)
